"""Arma 3 missions: upload (attachment or https link), list, delete, rotation, load.

Uploads are hostile until proven otherwise: the file name is checked before a byte is
written, the bytes land in a temp file beside the target, the PBO is validated, and only
then is it renamed into `mpmissions/` (so the folder never holds half a mission). The
folder is the truth for what exists; the table only remembers uploaders and hashes.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
import logging
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from yarl import URL

from core.errors import InvalidInput, NotFound, NotRunning, NotSupported
from core.games.pbo import (
    MISSION_FOLDER,
    ROTATION_SETTING,
    mission_template,
    mission_terrain,
    read_pbo,
    validate_mission_filename,
)
from core.net.download import AddressResolver, IPNetwork, download_https, parse_download_url
from core.services.audit import Actor, AuditLog
from core.supervisor.states import ServerState
from data.repositories.missions import MissionFiles, MissionRecord, MissionRepository

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer
    from core.supervisor.supervisor import Supervisor
    from data.db import Database

__all__ = [
    "DIFFICULTIES",
    "MISSION_FOLDER",
    "ROTATION_KEY",
    "DuplicateMission",
    "LoadResult",
    "MissionInfo",
    "MissionProgress",
    "MissionProgressCallback",
    "MissionService",
    "RotationEntry",
    "RotationResult",
    "UploadResult",
    "validate_difficulty",
]

_log = logging.getLogger(__name__)

ARMA3 = "arma3"
ROTATION_KEY = ROTATION_SETTING
DIFFICULTIES = ("Recruit", "Regular", "Veteran", "Custom")
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_ROTATION = 64
Stage = Literal["downloading", "validating", "stored"]


@dataclass(frozen=True, slots=True)
class MissionProgress:
    """Where an upload is: bytes so far while downloading, then validating, then stored."""

    stage: Stage
    received: int = 0
    total: int | None = None


MissionProgressCallback = Callable[[MissionProgress], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class UploadResult:
    filename: str
    template: str
    terrain: str
    size: int
    sha256: str
    replaced: bool


@dataclass(frozen=True, slots=True)
class MissionInfo:
    filename: str
    template: str
    terrain: str
    size: int
    sha256: str
    in_rotation: bool
    uploaded_by: str
    """"" when the file was put in the folder by hand."""
    uploaded_at: float


@dataclass(frozen=True, slots=True)
class RotationEntry:
    template: str
    difficulty: str | None


@dataclass(frozen=True, slots=True)
class RotationResult:
    entries: tuple[RotationEntry, ...]
    note: str
    """Tells the user when the change takes effect."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    template: str
    difficulty: str | None


class DuplicateMission(InvalidInput):
    """The same content is already on the server (under `existing`)."""

    def __init__(self, existing: str) -> None:
        super().__init__("this mission is already on the server as {existing}", existing=existing)
        self.existing = existing


def validate_difficulty(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    for known in DIFFICULTIES:
        if value.strip().lower() == known.lower():
            return known
    raise InvalidInput("difficulty must be one of {choices}", choices=", ".join(DIFFICULTIES))


class MissionService:
    """Missions of Arma 3 servers. Mutating calls are audited, refusals included."""

    def __init__(
        self,
        supervisor: Supervisor,
        db: Database,
        audit: AuditLog,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allow_private_urls: bool = False,
        allowed_networks: Sequence[IPNetwork] = (),
        ssl: ssl_module.SSLContext | None = None,
        download_timeout: float = 600.0,
        resolve: AddressResolver | None = None,
    ) -> None:
        self._sup = supervisor
        self._repo = MissionRepository(db)
        self._audit = audit
        self.max_bytes = max_bytes
        self._allow_private = allow_private_urls
        self._allowed_networks = tuple(allowed_networks)
        self._ssl = ssl
        self._timeout = download_timeout
        self._resolve = resolve
        self._locks: dict[int, asyncio.Lock] = {}

    # -- uploads -------------------------------------------------------------------------

    async def upload_bytes(
        self,
        actor: Actor,
        server_name: str,
        filename: str,
        data: bytes,
        progress: MissionProgressCallback | None = None,
        *,
        replace: bool = False,
    ) -> UploadResult:
        """Store an attachment the front end already read (Discord caps those at ~10 MiB)."""
        arguments = {"source": "attachment", "filename": filename, "size": len(data)}
        async with self._audit.scope(
            actor, "missions.upload", {**arguments, "replace": replace}
        ) as scope:
            server = self._arma(server_name)
            scope.server_id = server.id
            name = validate_mission_filename(filename)
            if not data:
                raise InvalidInput("the file is empty")
            self._check_size(len(data))
            files = self._files(server)
            tmp = await _write_temp(files, data)
            result = await self._store(actor, server, files, name, tmp, replace, progress)
            scope.result = f"stored {result.filename} ({result.size} bytes)"
            scope.arguments["sha256"] = result.sha256
            return result

    async def upload_url(
        self,
        actor: Actor,
        server_name: str,
        url: str,
        progress: MissionProgressCallback | None = None,
        *,
        replace: bool = False,
    ) -> UploadResult:
        """Fetch a mission from an https link (for files over Discord's upload cap)."""
        arguments = {"source": "url", "url": _safe_url(url)}
        async with self._audit.scope(
            actor, "missions.upload", {**arguments, "replace": replace}
        ) as scope:
            server = self._arma(server_name)
            scope.server_id = server.id
            parsed = parse_download_url(url)
            try:
                name = validate_mission_filename(parsed.name)
            except InvalidInput as exc:
                raise InvalidInput(
                    "the link must end with the mission file name: {exc}", exc=exc
                ) from None
            files = self._files(server)
            await asyncio.to_thread(files.create)

            async def on_bytes(received: int, total: int | None) -> None:
                await _emit(progress, MissionProgress("downloading", received, total))

            tmp = await download_https(
                str(parsed),
                files.folder,
                max_bytes=self.max_bytes,
                timeout=self._timeout,
                allow_private=self._allow_private,
                allowed_networks=self._allowed_networks,
                ssl=self._ssl,
                progress=on_bytes,
                resolve=self._resolve,
            )
            result = await self._store(actor, server, files, name, tmp, replace, progress)
            scope.result = f"stored {result.filename} ({result.size} bytes)"
            scope.arguments["sha256"] = result.sha256
            return result

    async def _store(
        self,
        actor: Actor,
        server: ManagedServer,
        files: MissionFiles,
        name: str,
        tmp: Path,
        replace: bool,
        progress: MissionProgressCallback | None,
    ) -> UploadResult:
        """Validate the temp file, then rename it into place; on any failure it is removed."""
        try:
            size = (await asyncio.to_thread(tmp.stat)).st_size
            await _emit(progress, MissionProgress("validating", size, size))
            summary = await asyncio.to_thread(read_pbo, tmp)
            if not summary.has_mission_sqm:
                raise InvalidInput(
                    "this PBO has no mission.sqm at its root: it is an addon or a broken "
                    "export, not a mission"
                )
            async with self._lock(server.id):
                records = await self._reconcile(server)
                for record in records:
                    if record.sha256 == summary.sha256:
                        raise DuplicateMission(record.filename)
                existing = next(
                    (r for r in records if r.filename.casefold() == name.casefold()), None
                )
                if existing is not None and existing.filename != name:
                    raise InvalidInput(
                        "{filename} differs only in letter case; use exactly that name to "
                        "replace it",
                        filename=existing.filename,
                    )
                if existing is not None and not replace:
                    raise InvalidInput(
                        "{name} already exists with different content; upload it again and "
                        "choose to replace it",
                        name=name,
                    )
                mtime_ns = await asyncio.to_thread(files.commit, tmp, name)
                await self._repo.put(
                    MissionRecord(
                        server_id=server.id,
                        filename=name,
                        sha256=summary.sha256,
                        size=summary.size,
                        terrain=mission_terrain(name),
                        mtime_ns=mtime_ns,
                        uploaded_by_id=actor.id,
                        uploaded_by=actor.name,
                        uploaded_at=time.time(),
                    )
                )
        finally:
            files.discard(tmp)  # gone already when it was renamed into place
        _log.info("mission %s stored for %s by %s", name, server.name, actor.name)
        await _emit(progress, MissionProgress("stored", summary.size, summary.size))
        return UploadResult(
            filename=name,
            template=mission_template(name),
            terrain=mission_terrain(name),
            size=summary.size,
            sha256=summary.sha256,
            replaced=existing is not None,
        )

    # -- listing, deleting --------------------------------------------------------------------

    async def list(self, server_name: str) -> builtins.list[MissionInfo]:
        """Missions in the server's folder, in name order, with their rotation flag."""
        server = self._arma(server_name)
        async with self._lock(server.id):
            records = await self._reconcile(server)
        in_rotation = {e.template.casefold() for e in await self._rotation(server)}
        return [
            MissionInfo(
                filename=r.filename,
                template=mission_template(r.filename),
                terrain=r.terrain,
                size=r.size,
                sha256=r.sha256,
                in_rotation=mission_template(r.filename).casefold() in in_rotation,
                uploaded_by=r.uploaded_by,
                uploaded_at=r.uploaded_at,
            )
            for r in records
        ]

    async def rotation(self, server_name: str) -> builtins.list[RotationEntry]:
        return await self._rotation(self._arma(server_name))

    async def delete(self, actor: Actor, server_name: str, mission: str) -> str:
        """Remove a mission file (refused while it is in the rotation); returns its name."""
        async with self._audit.scope(actor, "missions.delete", {"mission": mission}) as scope:
            server = self._arma(server_name)
            scope.server_id = server.id
            async with self._lock(server.id):
                record = _find(await self._reconcile(server), mission, server.name)
                template = mission_template(record.filename)
                if template.casefold() in {
                    e.template.casefold() for e in await self._rotation(server)
                }:
                    raise InvalidInput(
                        "{filename} is in the mission rotation; take it out with /missions "
                        "rotation first",
                        filename=record.filename,
                    )
                await asyncio.to_thread(self._files(server).remove, record.filename)
                await self._repo.delete(server.id, record.filename)
            scope.result = f"deleted {record.filename}"
            return record.filename

    # -- rotation and loading -----------------------------------------------------------------

    async def set_rotation(
        self,
        actor: Actor,
        server_name: str,
        missions: str | Sequence[str],
        difficulty: str | None = None,
    ) -> RotationResult:
        """Replace the rotation with `missions` in order ("a, b, a" may repeat a mission).

        Rendered into `class Missions` by the Arma 3 profile at the next start.
        """
        items = missions.split(",") if isinstance(missions, str) else builtins.list(missions)
        names = [item.strip() for item in items if item.strip()]
        arguments = {"missions": ", ".join(names), "difficulty": difficulty}
        async with self._audit.scope(actor, "missions.rotation", arguments) as scope:
            server = self._arma(server_name)
            scope.server_id = server.id
            level = validate_difficulty(difficulty)
            if len(names) > MAX_ROTATION:
                raise InvalidInput(
                    "a rotation holds at most {MAX_ROTATION} missions", MAX_ROTATION=MAX_ROTATION
                )
            async with self._lock(server.id):
                records = await self._reconcile(server)
                entries: list[RotationEntry] = []
                unknown: list[str] = []
                for name in names:
                    try:
                        entries.append(
                            RotationEntry(
                                mission_template(_find(records, name, server.name).filename), level
                            )
                        )
                    except NotFound:
                        unknown.append(name)
                if unknown:
                    shown = ", ".join(_short(n) for n in unknown[:5])
                    raise NotFound(
                        "not on {name}: {shown}; see /missions list", name=server.name, shown=shown
                    )
                await self._sup.settings_repo.set(
                    server.id,
                    ROTATION_KEY,
                    [{"template": e.template, "difficulty": e.difficulty} for e in entries],
                )
            if entries:
                note = "takes effect at the next start, or load a mission now with /missions load"
            else:
                note = "the rotation is now empty; at the next start the server waits for an admin"
            scope.result = f"rotation of {len(entries)}: {note}"
            return RotationResult(tuple(entries), note)

    async def load(
        self, actor: Actor, server_name: str, mission: str, difficulty: str | None = None
    ) -> LoadResult:
        """Switch a running server to `mission` now (Arma's #mission over RCon)."""
        arguments = {"mission": mission, "difficulty": difficulty}
        async with self._audit.scope(actor, "missions.load", arguments) as scope:
            server = self._arma(server_name)
            scope.server_id = server.id
            level = validate_difficulty(difficulty)
            async with self._lock(server.id):
                record = _find(await self._reconcile(server), mission, server.name)
            if server.state is not ServerState.RUNNING:
                raise _start_first(server.name, server.state)
            link = server.link
            if link is None or not link.connected:
                raise NotRunning(
                    "{name} is running but its RCon link is not connected; try again in a moment",
                    name=server.name,
                )
            template = mission_template(record.filename)
            await link.load_mission(template, level)
            scope.result = f"loaded {template}"
            return LoadResult(template, level)

    # -- helpers ------------------------------------------------------------------------

    def _arma(self, server_name: str) -> ManagedServer:
        server = self._sup.by_name(server_name)
        if server.game != ARMA3:
            raise NotSupported(
                "{name} is a {game} server; missions exist only on Arma 3 servers",
                name=server.name,
                game=server.game,
            )
        return server

    def _lock(self, server_id: int) -> asyncio.Lock:
        return self._locks.setdefault(server_id, asyncio.Lock())

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise InvalidInput(
                "the file is {mib}, over the {limit} limit for missions",
                mib=_mib(size),
                limit=_mib(self.max_bytes),
            )

    async def _rotation(self, server: ManagedServer) -> builtins.list[RotationEntry]:
        value = (await self._sup.settings_repo.get_all(server.id)).get(ROTATION_KEY)
        entries: list[RotationEntry] = []
        for item in value if isinstance(value, builtins.list) else []:
            if isinstance(item, dict) and isinstance(item.get("template"), str):
                level = item.get("difficulty")
                entries.append(
                    RotationEntry(item["template"], level if isinstance(level, str) else None)
                )
        return entries

    async def _reconcile(self, server: ManagedServer) -> builtins.list[MissionRecord]:
        return await self._repo.reconcile(server.id, self._files(server))

    def _files(self, server: ManagedServer) -> MissionFiles:
        return MissionFiles(self._sup.folder_for(server.name) / MISSION_FOLDER)


def _find(records: Sequence[MissionRecord], wanted: str, server: str) -> MissionRecord:
    """A mission by file name or template: exact first, then a unique case-insensitive match."""
    wanted = wanted.strip()
    for record in records:
        if wanted in (record.filename, mission_template(record.filename)):
            return record
    folded = wanted.casefold()
    matches = [
        r
        for r in records
        if folded in (r.filename.casefold(), mission_template(r.filename).casefold())
    ]
    if len(matches) == 1:
        return matches[0]
    raise NotFound(
        "no mission {short} on {server}; see /missions list", short=_short(wanted), server=server
    )


async def _write_temp(files: MissionFiles, data: bytes) -> Path:
    """Write in a thread; if we are cancelled meanwhile, the file is removed once written."""
    future = asyncio.ensure_future(asyncio.to_thread(files.write_temp, data))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(
            lambda done: (
                None if done.cancelled() or done.exception() else files.discard(done.result())
            )
        )
        raise


async def _emit(progress: MissionProgressCallback | None, event: MissionProgress) -> None:
    """Progress is cosmetic: a failing callback (an expired interaction) never fails the upload."""
    if progress is None:
        return
    try:
        result = progress(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        _log.warning("a mission progress callback failed", exc_info=True)


def _safe_url(url: str) -> str:
    """What the audit keeps of a link: host and file name, never credentials or query."""
    try:
        parsed = URL(url.strip())
        return f"{parsed.host}/…/{parsed.name}"[:200]
    except (ValueError, TypeError):
        return "<invalid link>"


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:60] + "…")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _start_first(name: str, state: ServerState) -> NotRunning:
    """A load refused because the server is not running, saying what it is doing instead."""
    if state is ServerState.STARTING:
        return NotRunning("{name} is starting; start it first", name=name)
    if state is ServerState.STOPPING:
        return NotRunning("{name} is stopping; start it first", name=name)
    if state is ServerState.CRASHED:
        return NotRunning("{name} is crashed; start it first", name=name)
    if state is ServerState.FAILED:
        return NotRunning("{name} is failed; start it first", name=name)
    return NotRunning("{name} is stopped; start it first", name=name)
