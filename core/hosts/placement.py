"""Which host a new server goes to when the member names none.

Why pure: the rule is arithmetic over a snapshot (what each host can run, declares and
reports), and a snapshot is easy to test with every tie and corner. The registry builds the
snapshot from probes and the start queue's ledger; this module only decides.

The rule: among reachable hosts that can run the game, those with room now win, and among
them the one with the most free memory; when none has room, the server still gets a home
(its start will wait in that host's queue): the capable host with the shortest queue, then
the most free memory. Ties go to the host declared first, so a choice is repeatable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import InvalidInput
from core.hosts.model import format_size

__all__ = ["HostRoom", "NoHostForGame", "Placement", "pick_host"]


class NoHostForGame(InvalidInput):
    """No host could take the server at all."""


@dataclass(frozen=True, slots=True)
class HostRoom:
    """One host as placement sees it, at one moment."""

    name: str
    games: frozenset[str]
    """Games it can run (a Docker host: those with an image; local: those installed)."""
    reachable: bool = True
    servers: int = 0
    """Servers holding a place (running or admitted to start)."""
    max_servers: int | None = None
    memory_reserved: int = 0
    memory_capacity: int | None = None
    """What the operator lets servers reserve in all (None: no limit)."""
    memory_available: int | None = None
    """What the machine reports free right now (None: not known)."""
    queued: int = 0

    @property
    def free_memory(self) -> int | None:
        """The smaller of what the capacity leaves and what the machine has; None when
        neither is known."""
        left = (
            None
            if self.memory_capacity is None
            else max(0, self.memory_capacity - self.memory_reserved)
        )
        if left is None:
            return self.memory_available
        if self.memory_available is None:
            return left
        return min(left, self.memory_available)

    def could_ever_fit(self, memory: int) -> bool:
        """False when the host's whole capacity is smaller than the need: it would wait
        forever."""
        return self.memory_capacity is None or memory <= self.memory_capacity

    def has_room(self, memory: int = 0) -> bool:
        """A start of this size would run now, not wait (nobody queued ahead either)."""
        if self.queued:
            return False
        if self.max_servers is not None and self.servers >= self.max_servers:
            return False
        free = self.free_memory
        return free is None or free >= memory


@dataclass(frozen=True, slots=True)
class Placement:
    host: str
    has_room: bool
    """False: the host is the best home, but a start will wait in its queue."""


def _memory_key(room: HostRoom) -> int:
    free = room.free_memory
    return -1 if free is None else free


def pick_host(rooms: Sequence[HostRoom], game: str, memory: int = 0) -> Placement:
    """The host for a new server of `game` needing `memory` bytes (0: not said)."""
    capable = [room for room in rooms if game in room.games]
    if not capable:
        raise NoHostForGame(
            "no host can run {game}: the operator adds an image for it in hosts.toml",
            game=game,
        )
    reachable = [(order, room) for order, room in enumerate(capable) if room.reachable]
    if not reachable:
        raise NoHostForGame(
            "every host that can run {game} is unreachable right now; try again later",
            game=game,
        )
    reachable = [(order, room) for order, room in reachable if room.could_ever_fit(memory)]
    if not reachable:
        raise NoHostForGame(
            "no host that can run {game} offers {memory} of memory to one server",
            game=game,
            memory=format_size(memory),
        )
    fitting = [(order, room) for order, room in reachable if room.has_room(memory)]
    if fitting:
        _, best = min(fitting, key=lambda item: (-_memory_key(item[1]), item[0]))
        return Placement(best.name, True)
    _, best = min(reachable, key=lambda item: (item[1].queued, -_memory_key(item[1]), item[0]))
    return Placement(best.name, False)
