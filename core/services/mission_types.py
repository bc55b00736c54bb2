"""What the mission service hands back and takes: upload progress, results, rotation entries,
the duplicate refusal, and the difficulty names.

Apart from the service so the front end can name these values (a select of missions, the
rotation's reply) without reading how uploads are stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from core.errors import InvalidInput

__all__ = [
    "DIFFICULTIES",
    "DuplicateMission",
    "LoadResult",
    "MissionInfo",
    "MissionProgress",
    "MissionProgressCallback",
    "RotationEntry",
    "RotationResult",
    "UploadResult",
    "validate_difficulty",
]

DIFFICULTIES = ("Recruit", "Regular", "Veteran", "Custom")
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
