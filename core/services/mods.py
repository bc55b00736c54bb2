"""The host's Arma 3 mod library and each server's mod set, as the `/mods` commands see it.

Each front-end command calls one method and renders its result (core/services/mod_views.py).
Levels (checked by the front end): admin for the library (`add`, `import_preset`, `remove`,
`order`, `pin`, `update`, `check_updates`), operator for a server's set (`set_server_mods`,
`order_server`). Headless clients get their `-mod=` from `launch_mods` (see core/mods).
Every change is audited. Downloads are jobs of the host's queue (core/jobs.py): the caller
gets the job at once, with its place in the queue, then SteamCMD's progress (core/steam);
when it ends the mods' lowercase trees are rebuilt and every server folder using them is
brought up to date (links, manifest, keys: core/mods/modset.py).
Update detection asks the Workshop's details API (reference §5) and compares `time_updated`
with the version SteamCMD installed (acf `timeupdated`, §1.6); pinned mods are held.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from core.errors import InvalidInput, LanguardError
from core.jobs import Job, JobCancelled, JobContext, JobQueue, UpdateListener
from core.mods.files import ModFiles
from core.mods.model import (
    LaunchMods,
    ModError,
    ModNotFound,
    Role,
    folder_name,
    parse_workshop_id,
)
from core.mods.modset import launch_mods
from core.mods.order import reorder
from core.mods.preset import parse_preset
from core.services.audit import SYSTEM, Actor, AuditLog
from core.services.mod_sets import LIVE, ModFolders
from core.services.mod_views import (
    DownloadResult,
    ModsAdded,
    ModsDownload,
    ModUpdate,
    ModView,
    RemovedMod,
    ServerMods,
    parse_set,
)
from core.steam import SteamCmd, SteamCmdUnavailable, SteamProgress, WorkshopDownloadFailed
from core.steam.jobs import PROGRESS_SCALE
from core.steam.workshop import WorkshopClient, WorkshopItem
from core.supervisor.supervisor import Supervisor
from data.repositories.mods import ModRepository, StoredMod

__all__ = ["ModService"]

_log = logging.getLogger(__name__)

ARMA3_APP = 107410
MAX_CHOICES = 25


class ModService:
    def __init__(
        self,
        supervisor: Supervisor,
        repository: ModRepository,
        audit: AuditLog,
        jobs: JobQueue,
        workshop: WorkshopClient,
        *,
        root: Path,
        steam: SteamCmd | None = None,
        base_keys: Path | None = None,
    ) -> None:
        self._sup = supervisor
        self._repo = repository
        self._audit = audit
        self._jobs = jobs
        self._workshop = workshop
        self._steam = steam
        self.files = ModFiles(root)
        self._folders = ModFolders(supervisor, repository, self.files, base_keys)
        self._lock = asyncio.Lock()
        """Serialises changes to the library, the sets and the folders they write."""

    async def close(self) -> None:
        await self._workshop.close()

    # -- lookups ---------------------------------------------------------------------------

    async def list(self) -> builtins.list[ModView]:
        """The library in its order: name, id, size, version, servers using each."""
        return await self._folders.views(await self._repo.all())

    async def choices(self, prefix: str = "") -> builtins.list[tuple[str, int]]:
        """(name, id) of library mods for autocomplete, prefix matches first."""
        wanted = (prefix or "").strip().lower()[:60]
        every = await self._repo.all()
        first = [m for m in every if m.name.lower().startswith(wanted)]
        rest = [m for m in every if wanted in m.name.lower() and m not in first]
        return [(m.name, m.id) for m in (first + rest)[:MAX_CHOICES]]

    async def server_mods(self, server: str) -> ServerMods:
        """A server's set in load order, with each mod's role."""
        managed = self._folders.arma3(server)
        return await self._folders.server_view(managed.id, managed.name)

    async def launch_mods(self, server_id: int) -> LaunchMods | None:
        """What `core.mods.launch_mods(folder)` says for this server (see core/mods)."""
        folder = self._sup.folder_for(self._sup.get(server_id).name)
        return await asyncio.to_thread(launch_mods, folder)

    # -- the library -----------------------------------------------------------------------

    async def add(
        self, actor: Actor, id_or_url: str, *, on_update: UpdateListener | None = None
    ) -> ModsAdded:
        """Add a Workshop item (id or link) and queue its download."""
        item_id = parse_workshop_id(id_or_url)
        async with self._audit.scope(actor, "mods.add", {"item": item_id}) as scope:
            result = await self._add_items([(item_id, "")], on_update)
            if result.unknown:
                raise ModNotFound(
                    "the Workshop has no Arma 3 mod {item_id} (deleted, hidden or private?)",
                    item_id=item_id,
                )
            scope.result = f"added {len(result.added)}"
            return result

    async def import_preset(
        self, actor: Actor, data: bytes, *, on_update: UpdateListener | None = None
    ) -> ModsAdded:
        """Add every Workshop mod of an Arma 3 Launcher preset (HTML), in its order."""
        preset = parse_preset(data)
        if not preset.mods:
            raise InvalidInput("that preset has no Steam Workshop mods")
        arguments = {"preset": preset.name, "mods": len(preset.mods)}
        async with self._audit.scope(actor, "mods.import", arguments) as scope:
            result = await self._add_items([(m.item_id, m.name) for m in preset.mods], on_update)
            scope.result = f"added {len(result.added)}, known {len(result.already)}"
            return ModsAdded(
                result.added,
                result.already,
                result.unknown,
                tuple(preset.local),
                tuple(name for name, _ in preset.dlc),
                preset.duplicates,
                preset.name,
                result.job,
            )

    async def _add_items(
        self, wanted: Sequence[tuple[int, str]], on_update: UpdateListener | None
    ) -> ModsAdded:
        self._need_steam()
        details = await self._workshop.details([item_id for item_id, _ in wanted])
        async with self._lock:
            known = {mod.id: mod for mod in await self._repo.all()}
            taken = await self._repo.folders()
            added: list[StoredMod] = []
            unknown: list[int] = []
            for item_id, preset_name in wanted:
                if item_id in known:
                    continue
                item = details.get(item_id)
                if item is None or (item.app_id is not None and item.app_id != ARMA3_APP):
                    unknown.append(item_id)
                    continue
                name = (preset_name or item.title or str(item_id))[:100]
                folder = folder_name(item.title or name, item_id, taken)
                taken.add(folder)
                added.append(
                    await self._repo.add(
                        item_id, name, folder, size=item.size, time_updated=item.time_updated
                    )
                )
        already = [known[i] for i, _ in wanted if i in known]
        pending = [m for m in [*added, *already] if not m.installed]
        job = self._download(pending, on_update) if pending else None
        return ModsAdded(
            tuple(await self._folders.views(added)),
            tuple(await self._folders.views(already)),
            tuple(unknown),
            job=job,
        )

    async def remove(self, actor: Actor, mod: str) -> RemovedMod:
        """Take a mod out of the library and of every server set, and delete its files.
        Refused while a server using it runs (its files are open)."""
        async with self._audit.scope(actor, "mods.remove", {"mod": mod}) as scope:
            async with self._lock:
                stored = await self._folders.resolve(mod)
                view = (await self._folders.views([stored]))[0]
                running = [name for name in view.servers if self._sup.by_name(name).state in LIVE]
                if running:
                    raise ModError(
                        "{mod} is loaded by running servers ({servers}); stop them or take "
                        "it out of their mod sets first",
                        mod=stored.name,
                        servers=", ".join(running),
                    )
                users = await self._repo.servers_using(stored.id)
                await self._repo.remove(stored.id)
                for server_id in users:
                    await self._folders.apply(server_id)
                await asyncio.to_thread(self.files.delete, stored.id)
            scope.result = f"removed {stored.name} ({stored.id})"
            return RemovedMod(view, view.servers)

    async def pin(self, actor: Actor, mod: str, pinned: bool) -> ModView:
        """Hold a mod at its version (updates skip it) or let it update again."""
        async with self._audit.scope(actor, "mods.pin", {"mod": mod, "pinned": pinned}):
            stored = await self._folders.resolve(mod)
            await self._repo.set_pinned(stored.id, pinned)
            again = await self._repo.get(stored.id)
            assert again is not None
            return (await self._folders.views([again]))[0]

    async def order(self, actor: Actor, mods: Sequence[str]) -> builtins.list[ModView]:
        """Arrange the named library mods in this order among the places they hold
        (core/mods/order.py): the order `list` shows them in."""
        async with self._audit.scope(actor, "mods.order", {"mods": _joined(mods)}), self._lock:
            every = await self._repo.all()
            wanted = [(await self._folders.resolve(ref, every)).id for ref in mods]
            await self._repo.set_order(reorder([m.id for m in every], wanted))
        return await self.list()

    async def order_server(self, actor: Actor, server: str, mods: Sequence[str]) -> ServerMods:
        """The same in a server's set: its load order (`-mod=` order, reference §4.5)."""
        managed = self._folders.arma3(server)
        scope = self._audit.scope(actor, "mods.order", {"mods": _joined(mods)}, managed.id)
        async with scope, self._lock:
            every = await self._repo.all()
            wanted = [(await self._folders.resolve(ref, every)).id for ref in mods]
            rows = await self._repo.server_set(managed.id)
            roles = {row.mod.id: row.role for row in rows}
            ordered = reorder([row.mod.id for row in rows], wanted)
            await self._repo.replace_set(managed.id, [(i, roles[i]) for i in ordered])
            return await self._folders.server_view(managed.id, managed.name, apply=True)

    # -- server sets -----------------------------------------------------------------------

    async def set_server_mods(
        self, actor: Actor, server: str, mods: str | Sequence[tuple[str, Role | str]]
    ) -> ServerMods:
        """Replace a server's set: mods in load order with their roles (`parse_set` reads
        the text form). An empty set gives the server back its free-text `mods` setting."""
        pairs = parse_set(mods) if isinstance(mods, str) else list(mods)
        managed = self._folders.arma3(server)
        text = ", ".join(f"{ref}:{Role.parse(str(role)).value}" for ref, role in pairs)
        scope = self._audit.scope(actor, "mods.set", {"mods": text}, managed.id)
        async with scope, self._lock:
            every = await self._repo.all()
            chosen: builtins.list[tuple[int, str]] = []
            for ref, role in pairs:
                mod = await self._folders.resolve(ref, every)
                if any(mod.id == done for done, _ in chosen):
                    raise InvalidInput("{mod} is named twice", mod=mod.name)
                chosen.append((mod.id, Role.parse(str(role)).value))
            await self._repo.replace_set(managed.id, chosen)
            return await self._folders.server_view(managed.id, managed.name, apply=True)

    # -- downloads and updates ---------------------------------------------------------------

    def _need_steam(self) -> SteamCmd:
        if self._steam is None:
            raise SteamCmdUnavailable(
                "SteamCMD is not set up: set LANGUARD_STEAMCMD to the path of steamcmd.sh"
            )
        return self._steam

    async def check_updates(self, actor: Actor = SYSTEM) -> builtins.list[ModUpdate]:
        """Ask the Workshop for each mod's `time_updated`; those newer than the copy on
        disk are returned. Pinned mods are not asked about (they are held)."""
        mods = [m for m in await self._repo.all() if not m.pinned]
        async with self._audit.scope(actor, "mods.check", {"mods": len(mods)}) as scope:
            details: dict[int, WorkshopItem] = await self._workshop.details([m.id for m in mods])
            for mod in mods:
                item = details.get(mod.id)
                if item is not None:
                    await self._repo.set_details(
                        mod.id, size=item.size, time_updated=item.time_updated
                    )
            fresh = [m for m in await self._repo.all() if not m.pinned and m.update_available]
            scope.result = f"{len(fresh)} update(s)"
            return [
                ModUpdate(view, view.installed_updated or 0, view.time_updated)
                for view in await self._folders.views(fresh)
            ]

    async def update(
        self,
        actor: Actor,
        mods: Sequence[str] = (),
        *,
        on_update: UpdateListener | None = None,
    ) -> ModsDownload:
        """Download what is missing and what has an update (all mods, or the named ones);
        pinned mods with an update are held (a pinned mod never downloaded is fetched)."""
        self._need_steam()
        async with self._audit.scope(actor, "mods.update", {"mods": _joined(mods)}) as scope:
            with contextlib.suppress(LanguardError):  # the Workshop may be down: go on
                await self.check_updates(actor)
            every = await self._repo.all()
            chosen = [await self._folders.resolve(r, every) for r in mods] if mods else every
            held = [m for m in chosen if m.pinned and m.installed]
            # named mods are fetched again (validated); otherwise only what is missing or old
            todo = [
                m
                for m in chosen
                if not m.installed or (not m.pinned and (m.update_available or bool(mods)))
            ]
            job = self._download(todo, on_update) if todo else None
            scope.result = f"{len(todo)} to download, {len(held)} held"
            return ModsDownload(
                tuple(await self._folders.views(todo)), tuple(await self._folders.views(held)), job
            )

    def _download(
        self, mods: Sequence[StoredMod], on_update: UpdateListener | None
    ) -> Job[DownloadResult]:
        steam = self._need_steam()
        ids = [m.id for m in mods]
        sizes = {m.id: m.size for m in mods if m.size > 0}

        async def run(context: JobContext) -> DownloadResult:
            def forward(progress: SteamProgress) -> None:
                with contextlib.suppress(JobCancelled):
                    done = round(progress.fraction * PROGRESS_SCALE)
                    context.progress(progress.stage, done, PROGRESS_SCALE)

            await asyncio.to_thread(self.files.prepare)
            failure: WorkshopDownloadFailed | None = None
            try:
                await steam.download_items(self.files.steam_dir, ids, forward, expected_sizes=sizes)
            except WorkshopDownloadFailed as exc:
                failure = exc  # what did arrive is installed below, then this is raised
            context.progress("installing", PROGRESS_SCALE, PROGRESS_SCALE)
            result = await self._install(ids)
            if failure is not None:
                raise failure
            return result

        key = "mods:" + ",".join(str(i) for i in sorted(ids))
        return self._jobs.submit("mods download", run, on_update=on_update, key=key)

    async def _install(self, ids: Sequence[int]) -> DownloadResult:
        """After SteamCMD: lowercase trees, installed versions, and the server folders."""
        async with self._lock:
            done = await asyncio.to_thread(self.files.install, list(ids))
            for item in done:
                await self._repo.set_installed(
                    item.item_id, time_updated=item.time_updated, size=item.size
                )
            touched = {item.item_id for item in done}
            users = await self._repo.users()
            servers = sorted({s for i in touched for s in users.get(i, [])})
            names = []
            for server_id in servers:
                await self._folders.apply(server_id)
                names.append(self._sup.get(server_id).name)
            installed = [m for m in await self._repo.all() if m.id in touched]
            return DownloadResult(tuple(await self._folders.views(installed)), tuple(names))


def _joined(mods: Sequence[str]) -> str:
    return ", ".join(mods)[:500]
