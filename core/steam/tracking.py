"""What SteamCMD does not print: item progress measured on disk, and Steam's workshop log.

`workshop_download_item` prints no progress at all (reference §1.4), so an item's partial
data in `steamapps/workshop/downloads/107410/<id>` is measured against its size from the
Workshop API. The cause of a `Failure` is only written to `<steam root>/logs/
workshop_log.txt` (`... (Missing decryption key)`, AMP #123), so the lines added during a
run are read back. Blocking file work here runs in a thread (the runner calls these through
asyncio.to_thread).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.steam import acf
from core.steam.output import Progress
from core.steam.progress import Stage

__all__ = [
    "AppProgress",
    "WorkshopProgress",
    "has_files",
    "log_marks",
    "partial_bytes",
    "recent_log_text",
    "workshop_logs",
]

MAX_LOG_READ = 256 * 1024
"""Bytes of workshop_log.txt read back after a run, at most (its end)."""
_MAX_ENTRIES = 200_000
"""Files counted per measurement at most: a pathological tree must not stall the thread."""


def tree_size(folder: Path) -> int:
    total = 0
    seen = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            seen += 1
            if seen > _MAX_ENTRIES:
                return total
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def partial_bytes(install_dir: Path, item_ids: Iterable[int]) -> int:
    """Bytes SteamCMD keeps for unfinished items (what a retry resumes from)."""
    return sum(tree_size(acf.downloads_dir(install_dir, i)) for i in item_ids)


def has_files(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


def workshop_logs(executable: Path, steam_root: Path | None) -> list[Path]:
    """Where Steam's workshop log may be: the configured root, else SteamCMD's folder and
    the usual Steam roots of this user."""
    if steam_root is not None:
        return [steam_root / "logs" / "workshop_log.txt"]
    home = Path.home()
    roots = [executable.parent, home / "Steam", home / ".steam" / "steam"]
    roots.append(home / ".local" / "share" / "Steam")
    return list(dict.fromkeys(root / "logs" / "workshop_log.txt" for root in roots))


def log_marks(paths: Iterable[Path]) -> dict[Path, int]:
    marks: dict[Path, int] = {}
    for path in paths:
        try:
            marks[path] = path.stat().st_size
        except OSError:
            marks[path] = 0
    return marks


def recent_log_text(marks: Mapping[Path, int]) -> str:
    """What was appended to each log since its mark (its end only, when that is long)."""
    parts: list[str] = []
    for path, mark in marks.items():
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                start = mark if mark <= size else 0  # rotated or truncated: read it all
                log.seek(max(start, size - MAX_LOG_READ))
                parts.append(log.read(MAX_LOG_READ).decode("utf-8", "replace"))
        except OSError:
            continue
    return "\n".join(parts)


class WorkshopProgress:
    """Items done plus the current item's partial bytes, weighted by size when sizes are
    known (else each item counts the same)."""

    def __init__(self, item_ids: list[int], sizes: Mapping[int, int]) -> None:
        self._ids = list(item_ids)
        self._sizes = {i: int(sizes[i]) for i in item_ids if sizes.get(i, 0) > 0}
        self._done: set[int] = set()
        self._partial: dict[int, int] = {}
        total = sum(self._sizes.values())
        sized = len(self._sizes) == len(self._ids) and total > 0
        self._weight = {
            i: (self._sizes[i] / total if sized else 1 / len(self._ids)) for i in self._ids
        }

    @property
    def items_done(self) -> int:
        return len(self._done)

    def knows_size(self, item_id: int) -> bool:
        return item_id in self._sizes

    def finished(self, item_id: int) -> None:
        self._done.add(item_id)
        self._partial.pop(item_id, None)

    def unfinished(self, item_id: int) -> None:
        self._done.discard(item_id)

    def partial(self, item_id: int, size: int) -> None:
        if item_id in self._sizes and item_id not in self._done:
            self._partial[item_id] = size

    def fraction(self) -> float:
        value = sum(self._weight[i] for i in self._done)
        for item_id, size in self._partial.items():
            value += self._weight[item_id] * min(0.99, size / self._sizes[item_id])
        return min(1.0, value)


_PHASES: dict[str, tuple[Stage, float, float]] = {
    "reconfiguring": ("downloading", 0.0, 0.0),
    "verifying install": ("verifying", 0.0, 0.10),
    "preallocating": ("downloading", 0.10, 0.15),
    "downloading": ("downloading", 0.15, 0.85),
    "verifying update": ("verifying", 0.85, 0.95),
    "validating": ("verifying", 0.85, 0.95),
    "committing": ("installing", 0.95, 1.0),
}
"""app_update's states (reference §1.3) as parts of one bar: checking what is there,
reserving space, downloading, checking the result, moving it into place."""


class AppProgress:
    def __init__(self) -> None:
        self.stage: Stage = "downloading"
        self.fraction = 0.0

    def feed(self, event: Progress) -> tuple[Stage, float]:
        phase = _PHASES.get(event.state.lower())
        if phase is not None:
            stage, low, high = phase
            self.stage = stage
            share = min(100.0, max(0.0, event.percent)) / 100.0
            self.fraction = max(self.fraction, low + (high - low) * share)
        return self.stage, self.fraction
