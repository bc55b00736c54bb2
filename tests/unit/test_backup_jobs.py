"""core/jobs.py: one job at a time, places in the queue, progress from threads, cancelling."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from core.errors import LanguardError
from core.jobs import JobContext, JobQueue, JobState, JobUpdate


async def test_jobs_run_one_at_a_time_in_order_and_see_their_place() -> None:
    queue = JobQueue()
    running = 0
    most = 0
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abc"}
    seen: dict[str, list[JobUpdate]] = {name: [] for name in "abc"}

    def factory(name: str):  # type: ignore[no-untyped-def]
        async def run(ctx: JobContext) -> str:
            nonlocal running, most
            running += 1
            most = max(most, running)
            order.append(name)
            await gates[name].wait()
            running -= 1
            return name.upper()

        return run

    jobs = {
        name: queue.submit(f"job {name}", factory(name), on_update=seen[name].append)
        for name in "abc"
    }
    await asyncio.sleep(0)
    assert [jobs[n].place for n in "abc"] == [0, 1, 2]
    gates["a"].set()
    assert await jobs["a"].result() == "A"
    await asyncio.sleep(0)
    assert [jobs[n].place for n in "bc"] == [0, 1]
    gates["b"].set()
    gates["c"].set()
    assert await jobs["c"].result() == "C"
    assert order == ["a", "b", "c"] and most == 1
    places_of_c = [u.place for u in seen["c"] if u.state is JobState.QUEUED]
    assert places_of_c[:1] == [2] and 1 in places_of_c
    assert seen["c"][-1].state is JobState.DONE
    await queue.close()


async def test_progress_from_a_thread_is_coalesced_and_delivered_before_the_result() -> None:
    queue = JobQueue()
    updates: list[JobUpdate] = []

    async def slow_listener(update: JobUpdate) -> None:
        await asyncio.sleep(0.01)
        updates.append(update)

    def work(ctx: JobContext) -> int:
        for i in range(1, 2001):
            ctx.progress("copying", i, 2000)
        return 7

    async def run(ctx: JobContext) -> int:
        return await ctx.in_thread(work, ctx)

    job = queue.submit("thread", run, on_update=slow_listener)
    assert await job.result() == 7
    assert updates[-1].state is JobState.DONE  # nothing arrives after the result
    progress = [u for u in updates if u.step == "copying"]
    assert progress and len(updates) < 200  # coalesced, not 2000 edits
    assert all(a.done <= b.done for a, b in itertools.pairwise(progress))
    await queue.close()


async def test_cancelling_a_running_thread_job_waits_for_the_thread_to_unwind() -> None:
    queue = JobQueue()
    started = threading.Event()
    unwound = threading.Event()

    def work(ctx: JobContext) -> None:
        started.set()
        try:
            while True:
                ctx.progress("spinning")
                time.sleep(0.005)
        finally:
            time.sleep(0.05)
            unwound.set()

    async def run(ctx: JobContext) -> None:
        await ctx.in_thread(work, ctx)

    first = queue.submit("spin", run)
    second_started_after_unwind: list[bool] = []

    async def second(ctx: JobContext) -> str:
        second_started_after_unwind.append(unwound.is_set())
        return "ok"

    nxt = queue.submit("next", second)
    async with asyncio.timeout(10):
        while not started.is_set():
            await asyncio.sleep(0.01)
    assert first.cancel()
    with pytest.raises(LanguardError, match="cancelled"):
        await first.result()
    assert first.state is JobState.CANCELLED
    assert await nxt.result() == "ok"
    assert second_started_after_unwind == [True]
    await queue.close()


async def test_a_waiting_job_can_be_cancelled_and_others_move_up() -> None:
    queue = JobQueue()
    gate = asyncio.Event()

    async def blocker(ctx: JobContext) -> None:
        await gate.wait()

    async def quick(ctx: JobContext) -> int:
        return 1

    first = queue.submit("block", blocker)
    await asyncio.sleep(0)  # the first one starts
    second = queue.submit("second", quick)
    third = queue.submit("third", quick)
    assert second.cancel()
    assert second.state is JobState.CANCELLED and third.place == 1
    assert not second.cancel()
    gate.set()
    await first.result()
    assert await third.result() == 1
    await queue.close()


async def test_a_full_queue_and_a_duplicate_key_are_refused_with_a_clear_error() -> None:
    queue = JobQueue(max_waiting=2)
    gate = asyncio.Event()

    async def blocker(ctx: JobContext) -> None:
        await gate.wait()

    queue.submit("running", blocker, key="backup:a")
    await asyncio.sleep(0)
    queue.submit("w1", blocker)
    queue.submit("w2", blocker)
    with pytest.raises(LanguardError, match="queue is full"):
        queue.submit("w3", blocker)
    with pytest.raises(LanguardError, match="already waiting or running"):
        queue.submit("again", blocker, key="backup:a")
    assert queue.busy("backup:a") and not queue.busy("backup:b")
    await queue.close()
    assert all(u.state is not JobState.RUNNING for u in queue.updates())


async def test_a_failing_job_reports_its_error_and_a_broken_listener_is_ignored() -> None:
    queue = JobQueue()

    def listener(update: JobUpdate) -> None:
        raise RuntimeError("the front end broke")

    async def boom(ctx: JobContext) -> None:
        raise LanguardError("nope {x}", x=1)

    async def fine(ctx: JobContext) -> str:
        return "fine"

    bad = queue.submit("bad", boom, on_update=listener)
    good = queue.submit("good", fine, on_update=listener)
    with pytest.raises(LanguardError, match="nope 1"):
        await bad.result()
    assert bad.state is JobState.FAILED
    assert await good.result() == "fine"
    await queue.close()
