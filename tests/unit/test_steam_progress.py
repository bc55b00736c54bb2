"""One progress bar for a SteamCMD job: monotonic, weighted, and never blocking the reader."""

from __future__ import annotations

import asyncio

from core.steam.output import Progress
from core.steam.progress import ProgressReporter, SteamProgress
from core.steam.tracking import AppProgress, WorkshopProgress


def test_workshop_progress_weights_by_size() -> None:
    tracker = WorkshopProgress([1, 2], {1: 300, 2: 100})
    tracker.partial(1, 150)
    assert tracker.fraction() == 0.75 * 0.5
    tracker.finished(1)
    assert tracker.fraction() == 0.75
    tracker.partial(2, 10_000)  # more on disk than announced: capped below done
    assert 0.75 < tracker.fraction() < 1.0
    tracker.finished(2)
    assert tracker.fraction() == 1.0 and tracker.items_done == 2


def test_workshop_progress_without_sizes_counts_items() -> None:
    tracker = WorkshopProgress([1, 2, 3, 4], {1: 10})
    assert not tracker.knows_size(2)
    tracker.finished(3)
    assert tracker.fraction() == 0.25


def test_app_progress_phases_never_go_back() -> None:
    tracker = AppProgress()
    seen = [
        tracker.feed(Progress(0x5, "verifying install", 90.0, 9, 10)),
        tracker.feed(Progress(0x61, "downloading", 10.0, 1, 10)),
        tracker.feed(Progress(0x61, "downloading", 50.0, 5, 10)),
        tracker.feed(Progress(0x81, "verifying update", 20.0, 2, 10)),
        tracker.feed(Progress(0x101, "committing", 100.0, 10, 10)),
    ]
    stages = [stage for stage, _ in seen]
    fractions = [fraction for _, fraction in seen]
    assert stages == ["verifying", "downloading", "downloading", "verifying", "installing"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert fractions[2] == 0.15 + 0.7 * 0.5


async def test_reporter_is_monotonic_and_skips_stale_values() -> None:
    received: list[SteamProgress] = []
    gate = asyncio.Event()

    async def slow(progress: SteamProgress) -> None:
        received.append(progress)
        await gate.wait()

    reporter = ProgressReporter(slow, items_total=3)
    reporter.update(fraction=0.2, stage="downloading")
    await asyncio.sleep(0)  # the first call starts and blocks on the gate
    for value in (0.3, 0.1, 0.5, 0.4):  # a lower value never wins
        reporter.update(fraction=value)
    assert reporter.current.fraction == 0.5
    gate.set()
    await reporter.aclose()
    assert [p.fraction for p in received] == [0.2, 0.5]  # 0.3 was superseded, never sent


async def test_reporter_survives_a_failing_callback() -> None:
    calls: list[float] = []

    def broken(progress: SteamProgress) -> None:
        calls.append(progress.fraction)
        raise RuntimeError("discord is down")

    reporter = ProgressReporter(broken)
    reporter.update(fraction=0.5)
    await asyncio.sleep(0)  # one turn of the loop: the task delivers 0.5 and waits again
    reporter.update(fraction=1.0, stage="done")
    await reporter.aclose()
    assert calls == [0.5, 1.0]
