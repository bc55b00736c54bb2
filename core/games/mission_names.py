"""Arma 3 mission file names: `missionName.terrainName.pbo`, checked before a byte is stored.

Apart from the PBO reader because a name is judged (and a mission found by its template)
long before, and without, any archive being read.
"""

from __future__ import annotations

import os
import re

from core.errors import InvalidInput

__all__ = [
    "MAX_MISSION_FILENAME",
    "MISSION_FOLDER",
    "ROTATION_SETTING",
    "mission_template",
    "mission_terrain",
    "validate_mission_filename",
]

MISSION_FOLDER = "mpmissions"
"""Where a server's mission files live, inside its folder."""
ROTATION_SETTING = "mission_rotation"
"""Server setting the Arma 3 profile renders into `class Missions`:
[{"template": "co10_Escape.Altis", "difficulty": "Regular" or None}, ...] in order."""

MAX_MISSION_FILENAME = 120
_MISSION_NAME = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*\.[A-Za-z0-9_]+\.pbo", re.ASCII
)
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{d}{i}" for d in ("com", "lpt") for i in range(1, 10)}
)
_EXAMPLE = "missionName.terrainName.pbo, e.g. co10_Escape.Altis.pbo"


def validate_mission_filename(filename: str) -> str:
    """A mission file name as stored (`.pbo` lower-cased), or InvalidInput saying what is wrong.

    ASCII letters, digits, `_`, `-` and dots only: no folders, no look-alike characters,
    no Windows device names, so the name is safe on every file system and in server.cfg.
    """
    if not filename:
        raise InvalidInput("give the mission file name: {EXAMPLE}", EXAMPLE=_EXAMPLE)
    if len(filename) > MAX_MISSION_FILENAME:
        raise InvalidInput(
            "the file name is longer than {MAX_MISSION_FILENAME} characters",
            MAX_MISSION_FILENAME=MAX_MISSION_FILENAME,
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in filename):
        raise InvalidInput("the file name contains control characters")
    if "/" in filename or "\\" in filename or ".." in filename or ":" in filename:
        raise InvalidInput("the file name must be a plain name, without folders, '..' or ':'")
    if not filename.isascii():
        raise InvalidInput(
            "use only letters A-Z, digits, '_', '-' and '.' in the file name "
            "(no accents, spaces or look-alike characters)"
        )
    if not filename.lower().endswith(".pbo"):
        raise InvalidInput("a mission must be a .pbo file named {EXAMPLE}", EXAMPLE=_EXAMPLE)
    name = filename[:-4] + ".pbo"
    if not _MISSION_NAME.fullmatch(name) or os.path.basename(name) != name:
        raise InvalidInput(
            "name the file {EXAMPLE}, using letters, digits, '_' and '-' (no spaces)",
            EXAMPLE=_EXAMPLE,
        )
    if name.split(".", 1)[0].lower() in _RESERVED:
        raise InvalidInput(
            "{name} is a reserved device name; rename the file", name=name.split(".", 1)[0]
        )
    return name


def mission_template(filename: str) -> str:
    """What server.cfg and #mission call a mission: its file name without `.pbo`."""
    return filename[:-4] if filename.lower().endswith(".pbo") else filename


def mission_terrain(filename: str) -> str:
    """The terrain of `missionName.terrainName.pbo` ("" when the name has none)."""
    stem = mission_template(filename)
    return stem.rsplit(".", 1)[1] if "." in stem else ""
