"""A server's mod set as files and views: the helper `ModService` writes folders through.

`apply` writes a server folder's `modset/` links, manifest and `keys/` from the stored set
(core/mods/modset.py); the views are what a front end renders. Callers hold the service's
lock around anything that changes the library, the sets or the folders.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.errors import ConfigWriteError, InvalidInput, NotSupported
from core.mods.files import ModFiles
from core.mods.keys import RECORD
from core.mods.model import ModNotFound, Role, parse_workshop_id
from core.mods.modset import ModsetEntry, clear_modset, write_modset
from core.services.mod_views import ModView, ServerMods, ServerModView
from core.services.server_views import ServerRef
from core.supervisor.states import ServerState
from core.supervisor.supervisor import Supervisor
from data.repositories.mods import ModRepository, StoredMod

__all__ = ["LIVE", "ModFolders"]

_log = logging.getLogger(__name__)

LIVE = frozenset({ServerState.STARTING, ServerState.RUNNING, ServerState.STOPPING})
"""States in which a server's process may hold its mods' files open."""


class ModFolders:
    def __init__(
        self,
        supervisor: Supervisor,
        repository: ModRepository,
        files: ModFiles,
        base_keys: Path | None,
    ) -> None:
        self.sup = supervisor
        self.repo = repository
        self.files = files
        self.base_keys = base_keys
        """The install's keys folder, where the game's own `a3.bikey` is."""

    async def resolve(self, ref: str, mods: Sequence[StoredMod] | None = None) -> StoredMod:
        """A library mod by Workshop id or link, folder (`@cba_a3`) or name (any case)."""
        text = (ref or "").strip()
        every = list(mods) if mods is not None else await self.repo.all()
        with contextlib.suppress(InvalidInput):
            item_id = parse_workshop_id(text)
            for mod in every:
                if mod.id == item_id:
                    return mod
        low = text.lower()
        for mod in every:
            if mod.folder == low or mod.folder == "@" + low or mod.name.lower() == low:
                return mod
        raise ModNotFound("there is no mod {ref!r} in the mod library", ref=text[:60])

    async def views(self, mods: Iterable[StoredMod]) -> builtins.list[ModView]:
        users = await self.repo.users()
        names = {server.id: server.name for server in self.sup.all()}
        return [
            ModView.of(mod, tuple(names[s] for s in users.get(mod.id, []) if s in names))
            for mod in mods
        ]

    def arma3(self, server: str) -> ServerRef:
        managed = self.sup.by_name((server or "").strip().lower())
        if managed.game != "arma3":
            raise NotSupported(
                "mod sets are for Arma 3 servers; {name} is not one", name=managed.name
            )
        return ServerRef(managed.id, managed.name)

    async def server_view(self, server_id: int, name: str, *, apply: bool = False) -> ServerMods:
        missing = await self.apply(server_id) if apply else ()
        rows = await self.repo.server_set(server_id)
        views = await self.views([row.mod for row in rows])
        state = self.sup.get(server_id).state
        return ServerMods(
            name,
            tuple(
                ServerModView(view, Role(row.role), row.position)
                for view, row in zip(views, rows, strict=True)
            ),
            tuple(missing) or tuple(v.name for v in views if not v.installed),
            next_start=state in LIVE,
        )

    async def apply(self, server_id: int) -> tuple[str, ...]:
        """Write a server folder's links, manifest and keys from its stored set."""
        folder = self.sup.folder_for(self.sup.get(server_id).name)
        rows = await self.repo.server_set(server_id)
        if not rows:
            before = await asyncio.to_thread(_key_files, folder / "keys")
            await asyncio.to_thread(clear_modset, folder)
            after = await asyncio.to_thread(_key_files, folder / "keys")
            await self._push_keys(server_id, folder, before - after)
            return ()
        entries = [
            ModsetEntry(
                row.mod.id,
                row.mod.name,
                row.mod.folder,
                Role(row.role),
                self.files.tree(row.mod.id),
                self.files.content(row.mod.id),
            )
            for row in rows
        ]
        report = await asyncio.to_thread(write_modset, folder, entries, base_keys=self.base_keys)
        if report.keys.added or report.keys.removed:
            _log.info(
                "server %s: keys added %s, removed %s",
                folder.name,
                list(report.keys.added),
                list(report.keys.removed),
            )
        keys = report.keys
        await self._push_keys(server_id, folder, (*keys.added, *keys.kept, *keys.removed))
        return report.missing

    async def _push_keys(self, server_id: int, folder: Path, names: Iterable[str]) -> None:
        """The server's `keys/` as it is now, where the game runs (a volume on another host
        gets every key, and loses those taken out). A host that does not take them is
        logged, not raised: the set is stored, and the next change pushes every key again."""
        paths = [folder / "keys" / name for name in (*names, RECORD)]
        try:
            await self.sup.push_files(server_id, paths)
        except ConfigWriteError as exc:
            _log.warning("server %s: its mod keys are not on its host yet: %s", folder.name, exc)


def _key_files(keys_dir: Path) -> set[str]:
    """Names of the files in a server's own `keys/` (none while it links the install's)."""
    if keys_dir.is_symlink() or not keys_dir.is_dir():
        return set()
    return {entry.name for entry in keys_dir.iterdir() if entry.is_file()}
