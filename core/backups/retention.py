"""Which backups to let go: pure, so every rule is tested without a disk.

A server keeps at most `keep` backups and none older than `max_age`, with two exceptions
that make pruning safe to run after every backup: the newest one is always kept (an old
server that stopped being backed up still has its last state), and so is any name in
`protect` (the backup a restore is reading, the one just written).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

__all__ = ["DAY", "RetentionPolicy", "to_prune"]

DAY = 86400.0
MAX_KEEP = 1000
MIN_AGE = 3600.0
MAX_AGE = 3650 * DAY


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    keep: int = 10
    max_age: float = 30 * DAY
    """Seconds."""


def to_prune(
    backups: Sequence[tuple[str, float]],
    policy: RetentionPolicy,
    now: float,
    protect: Collection[str] = (),
) -> list[str]:
    """The names among `backups` ((name, created) pairs) to delete, oldest first."""
    newest_first = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    doomed: list[str] = []
    for index, (name, created) in enumerate(newest_first):
        if index == 0 or name in protect:
            continue
        if index >= policy.keep or now - created > policy.max_age:
            doomed.append(name)
    return doomed[::-1]
