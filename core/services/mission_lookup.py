"""Finding a mission by what a member typed, and the refusals that name it or its server.

Apart from the service because the same lookup serves delete, rotation and load, and each
refusal keeps one literal template per case (each needs its own translation).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import NotFound, NotRunning
from core.games.mission_names import mission_template
from core.supervisor.states import ServerState
from data.repositories.missions import MissionRecord

__all__ = ["find_mission", "shorten", "start_first"]


def find_mission(records: Sequence[MissionRecord], wanted: str, server: str) -> MissionRecord:
    """A mission by file name or template: exact first, then a unique case-insensitive match."""
    wanted = wanted.strip()
    for record in records:
        if wanted in (record.filename, mission_template(record.filename)):
            return record
    folded = wanted.casefold()
    matches = [
        r
        for r in records
        if folded in (r.filename.casefold(), mission_template(r.filename).casefold())
    ]
    if len(matches) == 1:
        return matches[0]
    raise NotFound(
        "no mission {short} on {server}; see /missions list", short=shorten(wanted), server=server
    )


def shorten(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:60] + "…")


def start_first(name: str, state: ServerState) -> NotRunning:
    """A load refused because the server is not running, saying what it is doing instead."""
    if state is ServerState.STARTING:
        return NotRunning("{name} is starting; start it first", name=name)
    if state is ServerState.STOPPING:
        return NotRunning("{name} is stopping; start it first", name=name)
    if state is ServerState.CRASHED:
        return NotRunning("{name} is crashed; start it first", name=name)
    if state is ServerState.FAILED:
        return NotRunning("{name} is failed; start it first", name=name)
    return NotRunning("{name} is stopped; start it first", name=name)
