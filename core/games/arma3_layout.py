"""Where an Arma 3 server's files live, and the install's game data linked into its folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from core.config import ARMA3_EXECUTABLE_NAMES
from core.logs.tailer import newest_file

__all__ = ["Arma3Layout", "link_install"]

_log = logging.getLogger(__name__)

_PER_SERVER = frozenset({"mpmissions", "battleye", "profiles", "console.log", "console.fifo"})
_PER_SERVER_SUFFIXES = frozenset({".cfg", ".log", ".rpt", ".arma3profile"})


def link_install(install: Path, folder: Path, battleye: Path) -> list[str]:
    """Make the server folder look like the install: the game reads its data (addons, dta,
    keys, DLC folders, `@mods`) relative to its working directory, which is the server
    folder so that servers never share missions, configs or profiles. What a server owns
    (mpmissions, battleye, configs, logs) is never linked; BattlEye's server library is
    linked into the server's own BattlEye folder. Returns the names linked now."""
    linked: list[str] = []
    server = folder.resolve()
    try:
        entries = sorted(install.iterdir())
    except OSError as exc:
        _log.warning("cannot read the Arma 3 install folder %s: %s", install, exc)
        return linked
    for entry in entries:
        name = entry.name
        if (
            name.startswith(".")
            or name.lower() in _PER_SERVER
            or name in ARMA3_EXECUTABLE_NAMES
            or entry.suffix.lower() in _PER_SERVER_SUFFIXES
        ):
            continue
        target = entry.resolve()
        if target == server or target in server.parents or server in target.parents:
            continue  # the data folder lives inside the install: never link it into itself
        if _link(folder / name, target):
            linked.append(name)
    install_be = install / "battleye"
    if install_be.is_dir():
        for library in sorted(install_be.glob("*.so")):
            if _link(battleye / library.name, library.resolve()):
                linked.append(f"battleye/{library.name}")
    return linked


def _link(link: Path, target: Path) -> bool:
    """Create or repoint a symlink; never replace a real file or folder the admin put there."""
    if link.is_symlink():
        if link.resolve() == target:
            return False
        link.unlink()
    elif link.exists():
        return False
    link.symlink_to(target, target_is_directory=target.is_dir())
    return True


@dataclass(frozen=True, slots=True)
class Arma3Layout:
    """Where one server's files live; every path is absolute (the game runs in the folder)."""

    folder: Path

    @classmethod
    def of(cls, folder: Path) -> Arma3Layout:
        return cls(folder.resolve())

    @property
    def server_cfg(self) -> Path:
        return self.folder / "server.cfg"

    @property
    def basic_cfg(self) -> Path:
        return self.folder / "basic.cfg"

    @property
    def profiles(self) -> Path:
        return self.folder / "profiles"

    @property
    def linux_profile(self) -> Path:
        return self.folder / ".local" / "share" / "Arma 3 - Other Profiles" / "server"

    @property
    def battleye(self) -> Path:
        return self.folder / "battleye"

    @property
    def bans_txt(self) -> Path:
        return self.battleye / "bans.txt"

    @property
    def mpmissions(self) -> Path:
        return self.folder / "mpmissions"

    @property
    def console_log(self) -> Path:
        return self.folder / "console.log"

    def be_cfg(self, executable: Path) -> Path:
        """BattlEye reads `beserver_x64.cfg` beside the 64-bit server, `beserver.cfg` else."""
        x64 = executable.name.endswith("_x64")
        return self.battleye / ("beserver_x64.cfg" if x64 else "beserver.cfg")

    def newest_rpt(self) -> Path | None:
        """The RPT of the latest start: named by its start time, so the last name wins."""
        found = [newest_file(d, "*.rpt") for d in (self.profiles, self.linux_profile)]
        return max((p for p in found if p is not None), key=lambda p: p.name, default=None)
