"""The one lifecycle state machine: the states, and the single table of allowed moves.

Everything else asks this module; nobody compares states by hand.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ACTIVE_STATES",
    "RESTING_STATES",
    "TRANSITIONS",
    "IllegalTransition",
    "ServerState",
    "can_transition",
    "check_transition",
]


class ServerState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    CRASHED = "crashed"
    FAILED = "failed"


S = ServerState

TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    S.STOPPED: frozenset({S.STARTING}),
    # starting may fail to spawn (-> failed), die early (-> crashed), be stopped or come up
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.CRASHED, S.FAILED, S.STOPPED}),
    S.RUNNING: frozenset({S.STOPPING, S.CRASHED, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    # a crashed server waits for its backoff: it restarts, gives up, or is stopped
    S.CRASHED: frozenset({S.STARTING, S.FAILED, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED}),
}

ACTIVE_STATES = frozenset({S.STARTING, S.RUNNING, S.STOPPING})
"""A process exists (or is being made) in these states."""

RESTING_STATES = frozenset({S.STOPPED, S.CRASHED, S.FAILED})
"""No process runs in these states."""


class IllegalTransition(Exception):
    """A move the table does not allow: a programming error, never user input."""


def can_transition(old: ServerState, new: ServerState) -> bool:
    return new in TRANSITIONS[old]


def check_transition(old: ServerState, new: ServerState) -> None:
    if not can_transition(old, new):
        raise IllegalTransition(f"{old} -> {new} is not allowed")
