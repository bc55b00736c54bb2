"""What a backup of a server holds: the server's own state, never what can be fetched again.

A server's folder also holds the game install (Arma's links into the install, Minecraft's
`server.jar` and libraries), Workshop mods and logs: none of that is worth a byte of a
backup. Each game lists what to keep; an admin adds exclusion globs per server.

Globs work like `.gitignore`: `*` stays within one folder, `**` crosses folders, a glob
with no `/` matches a name in any folder (`*.bak`), and one with a `/` is anchored at the
server folder (`/world/DIM-1`, `logs/**`). A folder that matches takes its whole content.

The walk never follows a symbolic link (Arma's links into the install are links) and skips
anything that is not a regular file or a folder.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.backups.layout import RESTORE_DIR
from core.errors import InvalidInput

__all__ = [
    "MAX_EXCLUDES",
    "Glob",
    "Rules",
    "Selection",
    "check_excludes",
    "rules_for",
    "select",
]

_log = logging.getLogger(__name__)

MAX_EXCLUDES = 50
MAX_GLOB_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ALWAYS_EXCLUDED = (
    f"/{RESTORE_DIR}",
    "/console.log",
    "/console.log.*",
    "/console.fifo",
    "/fake_arma3.json",
)
"""Languard's own files in a server folder: the game's stdout log and a restore's staging."""


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out))


@dataclass(frozen=True, slots=True)
class Glob:
    """One `.gitignore`-style glob (see the module docstring)."""

    pattern: str

    @property
    def anchored(self) -> bool:
        return "/" in self.pattern.rstrip("/")

    def _body(self) -> str:
        return self.pattern.strip("/")

    def matches(self, path: str) -> bool:
        """Whether `path` (relative, `/`-separated) itself matches."""
        body = self._body()
        if not body:
            return False
        if self.anchored:
            return _compile(body).fullmatch(path) is not None
        return _compile(body).fullmatch(path.rsplit("/", 1)[-1]) is not None

    def covers(self, path: str) -> bool:
        """Whether `path` or one of the folders above it matches."""
        parts = path.split("/")
        return any(self.matches("/".join(parts[:n])) for n in range(1, len(parts) + 1))

    def may_hold(self, folder: str) -> bool:
        """Whether something below `folder` may match (so the walk must go in)."""
        if not self.anchored:
            return True
        want = self._body().split("/")
        have = folder.split("/")
        for index, part in enumerate(have):
            if index >= len(want):
                return True  # the glob matched a folder above: covered
            if want[index] == "**":
                return True
            if not _compile(want[index]).fullmatch(part):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Rules:
    include: tuple[Glob, ...]
    exclude: tuple[Glob, ...] = ()

    def included(self, path: str) -> bool:
        return any(g.covers(path) for g in self.include) and not self.excluded(path)

    def excluded(self, path: str) -> bool:
        return any(g.covers(path) for g in self.exclude)

    def may_hold(self, folder: str) -> bool:
        if self.excluded(folder):
            return False
        return any(g.covers(folder) or g.may_hold(folder) for g in self.include)


def _globs(patterns: Iterable[str]) -> tuple[Glob, ...]:
    return tuple(Glob(p) for p in patterns)


_ARMA3_INCLUDE = (
    "/profiles",  # -profiles: Users/<name>/<name>.Arma3Profile and *.vars.Arma3Profile
    "/.local/share/Arma 3 - Other Profiles",  # the profile where the Linux server keeps it
    "/mpmissions",
    "/*.cfg",  # server.cfg, basic.cfg
    "/userconfig",
    "/battleye/bans.txt",
    "/battleye/*.cfg",
)
_ARMA3_EXCLUDE = ("*.rpt", "*.log", "*.mdmp", "*.bidmp", "/battleye/beserver*_active_*.cfg")
_MINECRAFT_FILES = (
    "/server.properties",
    "/eula.txt",
    "/banned-players.json",
    "/banned-ips.json",
    "/ops.json",
    "/whitelist.json",
    "/usercache.json",
)
_MINECRAFT_EXCLUDE = ("session.lock", "/logs", "/crash-reports")
_OTHER_EXCLUDE = ("/logs", "*.log")


def _escape(name: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", name)


def _minecraft_worlds(folder: Path) -> list[str]:
    """The world folders: the `level-name` of server.properties (and its nether and end
    beside it, as Bukkit servers keep them), and any top folder holding a `level.dat`."""
    from core.games.minecraft_settings import MAX_PROPERTIES_BYTES, decode_properties

    level = "world"
    try:
        with (folder / "server.properties").open("rb") as handle:
            level = decode_properties(handle.read(MAX_PROPERTIES_BYTES)).get("level-name") or level
    except (OSError, ValueError):
        pass
    names: set[str] = set()
    parts = PurePosixPath(level).parts
    if level and ".." not in parts and not level.startswith("/") and _CONTROL.search(level) is None:
        names.update({level, f"{level}_nether", f"{level}_the_end"})
    try:
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False) and os.path.isfile(
                os.path.join(entry.path, "level.dat")
            ):
                names.add(entry.name)
    except OSError:
        pass
    return sorted(names)


def rules_for(game: str, folder: Path, excludes: Sequence[str] = ()) -> Rules:
    """The rules for a server of `game` whose files are in `folder`, plus its own
    exclusion globs (checked by `check_excludes`)."""
    extra = _globs(excludes)
    if game == "arma3":
        return Rules(_globs(_ARMA3_INCLUDE), _globs((*ALWAYS_EXCLUDED, *_ARMA3_EXCLUDE)) + extra)
    if game == "minecraft":
        worlds = [f"/{_escape(name)}" for name in _minecraft_worlds(folder)]
        include = _globs((*_MINECRAFT_FILES, *worlds))
        return Rules(include, _globs((*ALWAYS_EXCLUDED, *_MINECRAFT_EXCLUDE)) + extra)
    return Rules(_globs(("**",)), _globs((*ALWAYS_EXCLUDED, *_OTHER_EXCLUDE)) + extra)


def check_excludes(globs: Sequence[str]) -> tuple[str, ...]:
    """An admin's exclusion globs, cleaned, or InvalidInput saying what is wrong."""
    cleaned = tuple(dict.fromkeys(g.strip() for g in globs if g.strip()))
    if len(cleaned) > MAX_EXCLUDES:
        raise InvalidInput("at most {most} exclusion globs", most=MAX_EXCLUDES)
    for glob in cleaned:
        if (
            len(glob) > MAX_GLOB_CHARS
            or _CONTROL.search(glob)
            or ".." in PurePosixPath(glob).parts
            or "\\" in glob
        ):
            raise InvalidInput(
                "an exclusion glob is at most {most} characters, one line, without `..`",
                most=MAX_GLOB_CHARS,
            )
    return cleaned


@dataclass(frozen=True, slots=True)
class Selection:
    """What the walk found: folders and files (relative paths, sorted), their total size,
    and what it skipped (links, sockets, devices)."""

    dirs: tuple[str, ...]
    files: tuple[tuple[str, int], ...]
    skipped_links: int = 0
    skipped_special: int = 0
    unreadable: tuple[str, ...] = field(default=())

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def select(folder: Path, rules: Rules) -> Selection:
    """Walk `folder` (never following a link) and keep what `rules` include."""
    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    links = special = 0
    unreadable: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            entries = sorted(os.scandir(folder / rel if rel else folder), key=lambda e: e.name)
        except OSError as exc:
            _log.warning("backup: cannot read %s/%s: %s", folder.name, rel, exc.strerror)
            unreadable.append(rel)
            continue
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                unreadable.append(path)
                continue
            if stat.S_ISLNK(info.st_mode):
                links += rules.included(path)
            elif stat.S_ISDIR(info.st_mode):
                if rules.included(path):
                    dirs.append(path)
                    stack.append(path)
                elif rules.may_hold(path):
                    stack.append(path)
            elif stat.S_ISREG(info.st_mode):
                if rules.included(path):
                    files.append((path, info.st_size))
            else:
                special += rules.included(path)
    for path, _ in files:  # a folder above an included file is restored with it
        parts = path.split("/")[:-1]
        dirs.extend("/".join(parts[: n + 1]) for n in range(len(parts)))
    return Selection(
        tuple(sorted(set(dirs))), tuple(sorted(files)), links, special, tuple(unreadable)
    )
