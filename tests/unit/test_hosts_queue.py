"""The start queue: FIFO per host, places reported as they move, admission when room frees
(stop or crash), cancellable, bounded. Driven by events and a fake clock, never sleeps."""

from __future__ import annotations

import asyncio

import pytest

from core.hosts import HostSpec, StartCancelled, StartQueue, TicketState
from core.hosts.queue import AlreadyQueued, NeverFits, QueueFull

G = 1024**3
WAIT = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_queue(servers: int | None = 2, memory: int | None = None, limit: int = 20) -> StartQueue:
    queue = StartQueue(limit=limit, clock=Clock())
    queue.configure("b", max_servers=servers, memory=memory)
    return queue


async def test_a_start_that_fits_is_admitted_at_once() -> None:
    queue = make_queue()
    ticket = queue.request("b", 1, "alpha")
    assert ticket.state is TicketState.ADMITTED and ticket.position == 0
    await asyncio.wait_for(ticket.admitted(), WAIT)
    assert queue.usage("b").servers == 1 and queue.holds(1) == "b"


async def test_starts_beyond_capacity_wait_in_order_and_see_their_place() -> None:
    queue = make_queue(servers=1)
    queue.request("b", 1, "alpha")
    second = queue.request("b", 2, "beta")
    third = queue.request("b", 3, "gamma")
    assert (second.position, third.position) == (1, 2)
    assert queue.usage("b").queued == 2

    seen: list[int] = []
    first = asyncio.Event()

    async def watch() -> None:
        async for place in third.updates():
            seen.append(place)
            first.set()

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(first.wait(), WAIT)
    assert seen == [2]
    queue.release(1)  # alpha stopped: beta runs, gamma moves up
    assert second.state is TicketState.ADMITTED
    await asyncio.wait_for(second.admitted(), WAIT)
    queue.release(2)  # beta crashed: its place is free again
    await asyncio.wait_for(third.admitted(), WAIT)
    await asyncio.wait_for(watcher, WAIT)
    assert seen == [2, 1, 0]
    assert queue.usage("b").servers == 1 and queue.holds(3) == "b"


async def test_memory_capacity_is_first_come_first_served() -> None:
    queue = make_queue(servers=None, memory=16 * G)
    queue.request("b", 1, "alpha", 10 * G)
    big = queue.request("b", 2, "big", 12 * G)
    small = queue.request("b", 3, "small", 2 * G)
    # small would fit in the 6 GiB left, but it does not overtake big
    assert big.position == 1 and small.position == 2
    queue.release(1)
    assert big.state is TicketState.ADMITTED and small.state is TicketState.ADMITTED
    assert queue.usage("b").memory == 14 * G


async def test_cancelling_a_ticket_leaves_the_queue_and_moves_the_rest_up() -> None:
    queue = make_queue(servers=1)
    queue.request("b", 1, "alpha")
    second = queue.request("b", 2, "beta")
    third = queue.request("b", 3, "gamma")
    waiter = asyncio.create_task(second.admitted())
    assert second.cancel() is True
    with pytest.raises(StartCancelled) as caught:
        await asyncio.wait_for(waiter, WAIT)
    assert str(caught.value) == "the start of beta was cancelled while it waited for room on b"
    assert third.position == 1 and queue.ticket(2) is None and queue.ticket(3) is third
    assert second.cancel() is False
    queue.release(1)
    assert third.state is TicketState.ADMITTED


async def test_cancelling_the_waiting_task_cancels_its_ticket() -> None:
    queue = make_queue(servers=1)
    queue.request("b", 1, "alpha")
    second = queue.request("b", 2, "beta")
    started = asyncio.Event()

    async def wait() -> None:
        started.set()
        await second.admitted()

    waiter = asyncio.create_task(wait())
    await asyncio.wait_for(started.wait(), WAIT)  # the waiter is now parked in admitted()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert second.state is TicketState.CANCELLED and queue.waiting("b") == ()
    queue.release(1)
    assert queue.usage("b").servers == 0  # nobody started behind the member's back


async def test_updates_end_quietly_on_cancel() -> None:
    queue = make_queue(servers=1)
    queue.request("b", 1, "alpha")
    ticket = queue.request("b", 2, "beta")
    places: list[int] = []
    first = asyncio.Event()

    async def watch() -> None:
        async for place in ticket.updates():
            places.append(place)
            first.set()

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(first.wait(), WAIT)
    ticket.cancel()
    await asyncio.wait_for(watcher, WAIT)
    assert places == [1]


async def test_the_queue_is_bounded_and_a_server_waits_once() -> None:
    queue = make_queue(servers=1, limit=2)
    queue.request("b", 1, "alpha")
    queue.request("b", 2, "beta")
    with pytest.raises(AlreadyQueued) as again:
        queue.request("b", 2, "beta")
    assert str(again.value) == "beta is already waiting to start on b (place 1)"
    queue.request("b", 3, "gamma")
    with pytest.raises(QueueFull) as full:
        queue.request("b", 4, "delta")
    assert str(full.value) == "the start queue of host b is full (2 waiting); try again later"
    # a server that already holds its place (a restart) is admitted without queueing
    assert queue.request("b", 1, "alpha").state is TicketState.ADMITTED


async def test_a_start_bigger_than_the_host_is_refused_not_queued() -> None:
    queue = make_queue(memory=8 * G)
    with pytest.raises(NeverFits) as caught:
        queue.request("b", 1, "huge", 12 * G)
    assert (
        str(caught.value) == "huge needs 12 GiB of memory, more than host b offers in all (8 GiB)"
    )
    assert queue.usage("b").queued == 0


async def test_adopted_servers_count_even_above_capacity() -> None:
    queue = make_queue(servers=1)
    queue.hold("b", 1)
    queue.hold("b", 2)
    waiting = queue.request("b", 3, "gamma")
    queue.release(1)
    assert waiting.state is TicketState.WAITING  # still two running for a capacity of one
    queue.release(2)
    assert waiting.state is TicketState.ADMITTED


async def test_raising_capacity_admits_and_lowering_it_drops_what_never_fits() -> None:
    queue = make_queue(servers=1, memory=16 * G)
    queue.request("b", 1, "alpha", 1 * G)
    big = queue.request("b", 2, "big", 12 * G)
    small = queue.request("b", 3, "small", 1 * G)
    queue.configure("b", max_servers=1, memory=8 * G)
    assert big.state is TicketState.CANCELLED and small.position == 1
    queue.configure_from(HostSpec(name="b", capacity={"servers": 3, "memory": "8G"}))
    assert small.state is TicketState.ADMITTED


async def test_queues_are_per_host_and_waiting_time_uses_the_clock() -> None:
    clock = Clock()
    queue = StartQueue(clock=clock)
    queue.configure("b", max_servers=1, memory=None)
    queue.configure("c", max_servers=1, memory=None)
    queue.request("b", 1, "alpha")
    waiting = queue.request("b", 2, "beta")
    elsewhere = queue.request("c", 3, "gamma")
    assert elsewhere.state is TicketState.ADMITTED and waiting.position == 1
    clock.now += 90
    assert waiting.waited() == 90
    with pytest.raises(Exception, match="no host named d"):
        queue.request("d", 4, "delta")
