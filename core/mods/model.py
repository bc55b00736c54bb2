"""Roles, Workshop ids, folder names, launch arguments and the errors of the mod library.

Reference: shared/reference/steamcmd-workshop-and-headless.md §4.1 (`-mod=`/`-serverMod=`:
`;`-separated paths relative to the server folder, one argv item each, no shell), §4.4
(server-only mods are not sent to clients; headless clients load client mods, not server
mods), §3 (Workshop links `http(s)://steamcommunity.com/sharedfiles/filedetails/?id=<id>`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.errors import InvalidInput, LanguardError, NotFound, StartRefused

__all__ = [
    "MAX_ID",
    "LaunchMods",
    "ModError",
    "ModNotFound",
    "ModsNotReady",
    "Role",
    "folder_name",
    "mod_argv",
    "parse_workshop_id",
]

MAX_ID = 2**63 - 1
"""Workshop ids are 64-bit; SQLite's INTEGER holds them up to this."""
_ID_TEXT = re.compile(r"[0-9]{1,20}")
_URL = re.compile(
    r"(?:https?://)?(?:www\.)?steamcommunity\.com/(?:sharedfiles|workshop)/filedetails/"
    r"\?(?:[A-Za-z_]+=[^&#\s]*&)*id=([0-9]{1,20})(?:[&#][^\s]*)?",
    re.IGNORECASE,
)
_FOLDER_CHARS = re.compile(r"[^a-z0-9]+")
MAX_FOLDER = 40
FOLDER = re.compile(r"@[a-z0-9_]{1,64}")
"""What a mod's folder name in a server's `modset/` may look like (no `;`, no `/`)."""


class Role(StrEnum):
    """Where a mod of a server's set is loaded (§4.4)."""

    CLIENT = "client"
    """`-mod=`: the server, every player and headless clients load it; its keys go to keys/."""
    SERVER = "server"
    """`-serverMod=`: the server only; not sent to clients, so no key is needed."""
    HEADLESS = "headless"
    """Headless clients only (`-mod=` of each HC); its keys go to keys/ (HCs are clients)."""

    @classmethod
    def parse(cls, text: str) -> Role:
        word = (text or "").strip().lower().replace("_", "-")
        for role, names in _ROLE_WORDS.items():
            if word in names:
                return role
        raise InvalidInput(
            "{role!r} is not a mod role; use client, server-only or headless-only",
            role=(text or "")[:30],
        )


_ROLE_WORDS = {
    Role.CLIENT: {"client", "mod", "c"},
    Role.SERVER: {"server", "server-only", "servermod", "s"},
    Role.HEADLESS: {"headless", "headless-only", "hc", "h"},
}


class ModError(LanguardError):
    """A mod library action was refused; the message says why."""


class ModNotFound(ModError, NotFound):
    pass


class ModsNotReady(StartRefused):
    """A server's set names mods whose files are not there (not downloaded yet)."""


def parse_workshop_id(text: str) -> int:
    """A Workshop id from `450814997` or a Workshop page URL (`...filedetails/?id=450814997`)."""
    raw = (text or "").strip()
    if len(raw) > 300:
        raise InvalidInput("that is not a Workshop id or link (too long)")
    found = raw if _ID_TEXT.fullmatch(raw) else None
    if found is None:
        match = _URL.fullmatch(raw.strip("<>"))
        found = match.group(1) if match else None
    if found is None or not 0 < int(found) <= MAX_ID:
        raise InvalidInput(
            "{text!r} is not a Workshop id or link; use a number like 450814997 or the "
            "item's steamcommunity.com link",
            text=raw[:60],
        )
    return int(found)


def folder_name(name: str, item_id: int, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """`CBA_A3` → `@cba_a3`: lower case, letters, digits and `_` only (§4.2: the Linux server
    wants lower-case names; a `;` could never split the `-mod=` list). Unique among `taken`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = _FOLDER_CHARS.sub("_", ascii_name.lower()).strip("_")[:MAX_FOLDER].strip("_")
    candidate = f"@{base}" if base else f"@{item_id}"
    if candidate in taken:
        candidate = f"@{base}_{item_id}" if base else f"@{item_id}_{len(taken)}"
    return candidate


def mod_argv(flag: str, paths: Sequence[str]) -> list[str]:
    """One argv item `-mod=a;b` (no shell, so no quoting, §4.1), or none when empty. A path
    holding `;` or a control character would split or break the list: refused."""
    if not paths:
        return []
    for path in paths:
        if not path or ";" in path or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
            raise ModError("a mod path contains a character the game cannot take: {path!r}",
                           path=path[:60])  # fmt: skip
    return [f"-{flag}=" + ";".join(paths)]


@dataclass(frozen=True, slots=True)
class LaunchMods:
    """A server's managed mods: (path relative to its folder, role), in load order."""

    entries: tuple[tuple[str, Role], ...] = ()

    def _paths(self, *roles: Role) -> tuple[str, ...]:
        return tuple(path for path, role in self.entries if role in roles)

    @property
    def client(self) -> tuple[str, ...]:
        return self._paths(Role.CLIENT)

    @property
    def server(self) -> tuple[str, ...]:
        return self._paths(Role.SERVER)

    @property
    def headless(self) -> tuple[str, ...]:
        """Headless-only mods (a headless client also loads the client ones)."""
        return self._paths(Role.HEADLESS)

    def server_args(
        self, extra_mods: Sequence[str] = (), extra_server_mods: Sequence[str] = ()
    ) -> list[str]:
        """The server's `-mod=` and `-serverMod=` items: the managed mods first, then the
        free-text `mods` / `server_mods` settings (local mods that are not on the Workshop)."""
        mods = list(dict.fromkeys([*self.client, *extra_mods]))
        server = list(dict.fromkeys([*self.server, *extra_server_mods]))
        return mod_argv("mod", mods) + mod_argv("serverMod", server)

    def headless_mods(self, extra_mods: Sequence[str] = ()) -> list[str]:
        """A headless client's mod paths: client and headless-only mods in set order, then
        the free-text `mods`; never server-only mods (§4.4)."""
        return list(dict.fromkeys([*self._paths(Role.CLIENT, Role.HEADLESS), *extra_mods]))

    def headless_args(self, extra_mods: Sequence[str] = ()) -> list[str]:
        """A headless client's `-mod=` item (see `headless_mods`)."""
        return mod_argv("mod", self.headless_mods(extra_mods))
