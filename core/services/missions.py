"""Arma 3 missions: upload (attachment or https link), list, delete, rotation, load.

Uploads are hostile until proven otherwise: the file name is checked before a byte is
written, the bytes land in a temp file beside the target, the PBO is validated, and only
then is it renamed into `mpmissions/` (so the folder never holds half a mission). The
folder is the truth for what exists; the table only remembers uploaders and hashes.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import ssl as ssl_module
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import InvalidInput, NotFound, NotRunning, NotSupported
from core.games.mission_names import (
    MISSION_FOLDER,
    ROTATION_SETTING,
    mission_template,
    mission_terrain,
    validate_mission_filename,
)
from core.games.pbo import read_pbo
from core.net.download import AddressResolver, IPNetwork, download_https, parse_download_url
from core.services.audit import Actor, AuditLog
from core.services.mission_lookup import find_mission, shorten, start_first
from core.services.mission_types import (
    DuplicateMission,
    LoadResult,
    MissionInfo,
    MissionProgress,
    MissionProgressCallback,
    RotationEntry,
    RotationResult,
    UploadResult,
    validate_difficulty,
)
from core.services.mission_upload import emit_progress, mib, push_or_undo, safe_url, write_temp
from core.supervisor.states import ServerState
from data.repositories.missions import MissionFiles, MissionRecord, MissionRepository

if TYPE_CHECKING:
    from core.supervisor.server import ManagedServer
    from core.supervisor.supervisor import Supervisor
    from data.db import Database

__all__ = ["ROTATION_KEY", "MissionService"]

_log = logging.getLogger(__name__)

ARMA3 = "arma3"
ROTATION_KEY = ROTATION_SETTING
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
MAX_ROTATION = 64


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
            tmp = await write_temp(files, data)
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
        arguments = {"source": "url", "url": safe_url(url)}
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
                await emit_progress(progress, MissionProgress("downloading", received, total))

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
            await emit_progress(progress, MissionProgress("validating", size, size))
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
                await push_or_undo(self._sup, server.id, files, name)
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
        await emit_progress(progress, MissionProgress("stored", summary.size, summary.size))
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
                record = find_mission(await self._reconcile(server), mission, server.name)
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
                await push_or_undo(self._sup, server.id, self._files(server), record.filename)
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
                                mission_template(find_mission(records, name, server.name).filename),
                                level,
                            )
                        )
                    except NotFound:
                        unknown.append(name)
                if unknown:
                    shown = ", ".join(shorten(n) for n in unknown[:5])
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
                record = find_mission(await self._reconcile(server), mission, server.name)
            if server.state is not ServerState.RUNNING:
                raise start_first(server.name, server.state)
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
                mib=mib(size),
                limit=mib(self.max_bytes),
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
