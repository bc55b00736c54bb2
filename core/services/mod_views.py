"""What the mod service hands a front end: plain values to render, and the set parser.

A `/mods` or `/server mods` command calls one `ModService` method and renders one of these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InvalidInput
from core.jobs import Job
from core.mods.model import Role
from data.repositories.mods import StoredMod

__all__ = [
    "DownloadResult",
    "ModUpdate",
    "ModView",
    "ModsAdded",
    "ModsDownload",
    "RemovedMod",
    "ServerModView",
    "ServerMods",
    "parse_set",
]

MAX_SET_ITEMS = 200
_SPLIT = re.compile(r"[,\n]+")


@dataclass(frozen=True, slots=True)
class ModView:
    id: int
    name: str
    folder: str
    size: int
    time_updated: int
    """Newest version seen on the Workshop (Unix time; 0 when never asked)."""
    installed_updated: int | None
    """The version on disk (None: not downloaded)."""
    pinned: bool
    servers: tuple[str, ...]
    """Servers whose set has this mod."""

    @property
    def installed(self) -> bool:
        return self.installed_updated is not None

    @property
    def update_available(self) -> bool:
        return self.installed_updated is not None and self.time_updated > self.installed_updated

    @classmethod
    def of(cls, mod: StoredMod, servers: tuple[str, ...] = ()) -> ModView:
        return cls(
            mod.id,
            mod.name,
            mod.folder,
            mod.size,
            mod.time_updated,
            mod.installed_updated,
            mod.pinned,
            servers,
        )


@dataclass(frozen=True, slots=True)
class ServerModView:
    mod: ModView
    role: Role
    position: int


@dataclass(frozen=True, slots=True)
class ServerMods:
    server: str
    mods: tuple[ServerModView, ...]
    missing: tuple[str, ...] = ()
    """Mods of the set that are not downloaded yet: the server will not start until they are."""
    next_start: bool = False
    """The server runs now: the change takes effect at its next start."""


@dataclass(frozen=True, slots=True)
class DownloadResult:
    installed: tuple[ModView, ...]
    servers: tuple[str, ...]
    """Servers whose folder (links, keys) was brought up to date."""


@dataclass(frozen=True, slots=True)
class ModsAdded:
    added: tuple[ModView, ...]
    already: tuple[ModView, ...] = ()
    unknown: tuple[int, ...] = ()
    """Workshop ids the Workshop does not know (deleted, hidden, private) or not Arma 3."""
    local: tuple[str, ...] = ()
    """A preset's local mods: not on the Workshop, so not added."""
    dlc: tuple[str, ...] = ()
    duplicates: int = 0
    preset: str = ""
    job: Job[DownloadResult] | None = None
    """The queued download of what is not on disk yet (None: nothing to download)."""


@dataclass(frozen=True, slots=True)
class ModsDownload:
    mods: tuple[ModView, ...]
    held: tuple[ModView, ...] = ()
    """Pinned mods that were left alone (their updates are not even asked about)."""
    job: Job[DownloadResult] | None = None


@dataclass(frozen=True, slots=True)
class ModUpdate:
    mod: ModView
    installed: int
    latest: int


@dataclass(frozen=True, slots=True)
class RemovedMod:
    mod: ModView
    servers: tuple[str, ...]
    """Servers whose set it left."""


def parse_set(text: str) -> list[tuple[str, Role]]:
    """`cba, ace, @rhs_afrf:client, my_tweaks:server-only, hc_ai:headless-only` → (mod, role)
    pairs in that order; a mod without a role is a client mod. Commas or new lines separate."""
    items = [part.strip() for part in _SPLIT.split(text or "") if part.strip()]
    if len(items) > MAX_SET_ITEMS:
        raise InvalidInput("a mod set has at most {most} mods", most=MAX_SET_ITEMS)
    pairs: list[tuple[str, Role]] = []
    for item in items:
        ref, sep, word = item.rpartition(":")
        role = Role.CLIENT
        if sep and ref.strip() and not word.startswith("//"):
            try:
                role = Role.parse(word)
            except InvalidInput:
                if re.fullmatch(r"[A-Za-z_-]{1,20}", word.strip()):
                    raise  # it looks like a role, but no known one
                ref = item  # a colon inside a link
            else:
                item = ref
        pairs.append((item.strip(), role))
    return pairs
