"""A start that does not fit its host waits its turn instead of failing.

Why: a community that booked a host for four servers wants the fifth start to run as soon
as one stops, not a refusal and a member pressing the button again every minute. Each host
keeps a ledger of the places held (a server counts from the moment it is admitted until it
stops or crashes) and a FIFO of tickets. The head of a host's queue is admitted as soon as
it fits; nobody overtakes it, so a large start is never starved by small ones. The ledger
counts what the operator declared (servers, memory), so the order is deterministic; what a
machine reports free is placement's business.

Each ticket tells its place as it moves (`updates()`), so a front end can edit its reply;
cancelling the ticket (or the task awaiting it) leaves the queue at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from core.errors import NotFound, StartRefused
from core.hosts.model import HostSpec, format_size

__all__ = [
    "AlreadyQueued",
    "HostUsage",
    "NeverFits",
    "QueueFull",
    "StartCancelled",
    "StartQueue",
    "Ticket",
    "TicketState",
]

DEFAULT_LIMIT = 20
"""Tickets that may wait on one host at once."""


class StartCancelled(StartRefused):
    """The ticket was cancelled before the start ran; nothing was started."""


class QueueFull(StartRefused):
    pass


class AlreadyQueued(StartRefused):
    pass


class NeverFits(StartRefused):
    """The start needs more than the host's whole capacity: waiting would be forever."""


class TicketState(StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"
    CANCELLED = "cancelled"


class Ticket:
    """One start's place: `position` is 1 for the head of the queue, 0 once admitted."""

    def __init__(
        self, queue: StartQueue, host: str, server_id: int, server: str, memory: int, now: float
    ) -> None:
        self._queue = queue
        self.host = host
        self.server_id = server_id
        self.server = server
        self.memory = memory
        self.queued_at = now
        self.state = TicketState.WAITING
        self.position = 0
        self._version = 0
        self._watchers: set[asyncio.Event] = set()

    def _set(self, state: TicketState, position: int) -> None:
        if (state, position) == (self.state, self.position):
            return
        self.state = state
        self.position = position
        self._version += 1
        for watcher in self._watchers:
            watcher.set()

    async def _changed_since(self, version: int) -> None:
        while self._version == version:
            watcher = asyncio.Event()
            self._watchers.add(watcher)
            try:
                await watcher.wait()
            finally:
                self._watchers.discard(watcher)

    @property
    def done(self) -> bool:
        return self.state is not TicketState.WAITING

    def waited(self) -> float:
        """Seconds since the ticket was taken (on the queue's clock)."""
        return max(0.0, self._queue.clock() - self.queued_at)

    async def admitted(self) -> None:
        """Return once the start may run; StartCancelled if the ticket was cancelled.

        Cancelling the task that waits here cancels the ticket too: a start nobody waits
        for must not run later by surprise."""
        try:
            while self.state is TicketState.WAITING:
                await self._changed_since(self._version)
        except asyncio.CancelledError:
            self.cancel()
            raise
        if self.state is TicketState.CANCELLED:
            raise StartCancelled(
                "the start of {server} was cancelled while it waited for room on {host}",
                server=self.server,
                host=self.host,
            )

    async def updates(self) -> AsyncIterator[int]:
        """The place now, then each new place; ends after 0 (admitted) or on cancel."""
        while True:
            version = self._version
            if self.state is TicketState.CANCELLED:
                return
            yield self.position
            if self.state is TicketState.ADMITTED:
                return
            await self._changed_since(version)

    def cancel(self) -> bool:
        """Leave the queue (True), or False when it was already admitted or cancelled."""
        return self._queue._cancel(self)

    def __repr__(self) -> str:
        return f"<Ticket {self.server!r} on {self.host} {self.state.value} #{self.position}>"


@dataclass(frozen=True, slots=True)
class HostUsage:
    servers: int
    memory: int
    queued: int


@dataclass
class _Book:
    max_servers: int | None
    memory: int | None
    held: dict[int, int] = field(default_factory=dict)
    waiting: deque[Ticket] = field(default_factory=deque)

    def fits(self, memory: int) -> bool:
        if self.max_servers is not None and len(self.held) >= self.max_servers:
            return False
        return self.memory is None or sum(self.held.values()) + memory <= self.memory


class StartQueue:
    """Every host's ledger and queue; the supervisor asks before a start and releases
    after a stop or a crash."""

    def __init__(
        self, *, limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.clock = clock
        self._books: dict[str, _Book] = {}
        self._host_of: dict[int, str] = {}

    def configure(self, host: str, *, max_servers: int | None, memory: int | None) -> None:
        """Declare a host or change its capacity (a reloaded file); admits what now fits.
        Places already held are kept even above a lowered capacity."""
        book = self._books.get(host)
        if book is None:
            self._books[host] = _Book(max_servers, memory)
            return
        book.max_servers, book.memory = max_servers, memory
        self._pump(host)

    def configure_from(self, spec: HostSpec) -> None:
        self.configure(spec.name, max_servers=spec.capacity.servers, memory=spec.capacity.memory)

    def _book(self, host: str) -> _Book:
        book = self._books.get(host)
        if book is None:
            raise NotFound("no host named {name}", name=host)
        return book

    def hold(self, host: str, server_id: int, memory: int = 0) -> None:
        """Count a server that already runs (adopted after a restart), even above capacity:
        it runs whatever the ledger says, so the ledger must say so."""
        book = self._book(host)
        self._drop(server_id)
        book.held[server_id] = memory
        self._host_of[server_id] = host

    def request(self, host: str, server_id: int, server: str, memory: int = 0) -> Ticket:
        """A ticket for a start: admitted at once when it fits and nobody waits ahead,
        else waiting in the host's queue (see `Ticket.admitted` and `Ticket.updates`)."""
        book = self._book(host)
        ticket = Ticket(self, host, server_id, server, memory, self.clock())
        if server_id in book.held:
            ticket._set(TicketState.ADMITTED, 0)
            return ticket
        for waiting in book.waiting:
            if waiting.server_id == server_id:
                raise AlreadyQueued(
                    "{server} is already waiting to start on {host} (place {place})",
                    server=server,
                    host=host,
                    place=waiting.position,
                )
        if book.memory is not None and memory > book.memory:
            raise NeverFits(
                "{server} needs {need} of memory, more than host {host} offers in all ({total})",
                server=server,
                need=format_size(memory),
                host=host,
                total=format_size(book.memory),
            )
        if not book.waiting and book.fits(memory):
            self._admit(book, ticket)
            return ticket
        if len(book.waiting) >= self.limit:
            raise QueueFull(
                "the start queue of host {host} is full ({limit} waiting); try again later",
                host=host,
                limit=self.limit,
            )
        book.waiting.append(ticket)
        self._host_of[server_id] = host
        ticket._set(TicketState.WAITING, len(book.waiting))
        return ticket

    def release(self, server_id: int) -> None:
        """The server stopped, crashed or was deleted: free its place (or drop its ticket)
        and admit whoever now fits."""
        host = self._drop(server_id)
        if host is not None:
            self._pump(host)

    def ticket(self, server_id: int) -> Ticket | None:
        """The waiting ticket of a server, if it waits."""
        host = self._host_of.get(server_id)
        if host is None:
            return None
        return next((t for t in self._books[host].waiting if t.server_id == server_id), None)

    def waiting(self, host: str) -> tuple[Ticket, ...]:
        return tuple(self._book(host).waiting)

    def usage(self, host: str) -> HostUsage:
        book = self._book(host)
        return HostUsage(len(book.held), sum(book.held.values()), len(book.waiting))

    def holds(self, server_id: int) -> str | None:
        """The host where the server holds a place, if it does."""
        host = self._host_of.get(server_id)
        if host is not None and server_id in self._books[host].held:
            return host
        return None

    def _admit(self, book: _Book, ticket: Ticket) -> None:
        book.held[ticket.server_id] = ticket.memory
        self._host_of[ticket.server_id] = ticket.host
        ticket._set(TicketState.ADMITTED, 0)

    def _drop(self, server_id: int) -> str | None:
        host = self._host_of.pop(server_id, None)
        if host is None:
            return None
        book = self._books[host]
        book.held.pop(server_id, None)
        for ticket in tuple(book.waiting):
            if ticket.server_id == server_id:
                book.waiting.remove(ticket)
                ticket._set(TicketState.CANCELLED, 0)
        return host

    def _cancel(self, ticket: Ticket) -> bool:
        book = self._books.get(ticket.host)
        if book is None or ticket not in book.waiting:
            return False
        book.waiting.remove(ticket)
        if self._host_of.get(ticket.server_id) == ticket.host:
            del self._host_of[ticket.server_id]
        ticket._set(TicketState.CANCELLED, 0)
        self._pump(ticket.host)
        return True

    def _pump(self, host: str) -> None:
        """Admit heads while they fit, then tell everyone still waiting their new place."""
        book = self._books[host]
        if book.memory is not None:
            # a lowered capacity must not leave a head that can never fit blocking the rest
            for ticket in [t for t in book.waiting if t.memory > book.memory]:
                book.waiting.remove(ticket)
                self._host_of.pop(ticket.server_id, None)
                ticket._set(TicketState.CANCELLED, 0)
        while book.waiting and book.fits(book.waiting[0].memory):
            self._admit(book, book.waiting.popleft())
        for place, ticket in enumerate(book.waiting, start=1):
            ticket._set(TicketState.WAITING, place)
