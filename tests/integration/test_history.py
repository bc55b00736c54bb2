"""Player-count history and charts against a real database, a real runtime and fake games.

The compaction tests fill a real SQLite file with weeks of samples and check that folding
them into 1-minute and 15-minute rows keeps every sample exactly once, also when the
process doing it is killed with SIGKILL half-way.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib import image as mpimg

from core.charts import HEIGHT_PX, HOST_HEIGHT_PX, WIDTH_PX
from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.games.base import OnlinePlayer
from core.runtime import Runtime
from core.services.audit import Actor
from core.services.stats import StatsService, parse_period
from data.db import Database
from data.repositories.servers import ServerRepository
from data.repositories.settings import SettingsRepository
from data.repositories.telemetry import MetricSample, MetricsRepository, Retention, SeriesPoint
from tests.fakes.memory_link import MemoryProfile
from tests.integration.supervision import FAST, kill_groups, supervised

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0
NOW = 1_750_000_000.0  # a fixed "now": every cut-off below is known in advance
ADMIN = Actor(1, "admin")
EARLIER = NOW - 40 * DAY
"""Before every sample: history is compared over whole buckets, never a cut one."""
DAY_STEP = 86400


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return result


def decode_size(png: bytes) -> tuple[int, int]:
    img = mpimg.imread(io.BytesIO(png), format="png")
    assert img[:, :, :3].std() > 0.01, "not one colour"
    return int(img.shape[1]), int(img.shape[0])


# -- the runtime: players sampled with the metrics, charted with their marks ------------------


async def test_players_are_stored_with_each_sample_and_charted(tmp_path: Path) -> None:
    profile = MemoryProfile()
    settings = Settings(data_dir=tmp_path / "data", metrics_interval=0.2)
    runtime = await Runtime.open(settings, [profile])
    pids: list[int] = []
    try:
        created = await runtime.servers.create(ADMIN, "alpha", "fake")
        await SettingsRepository(runtime.db).set_many(created.id, {**FAST, "liveness_interval": 0})
        await runtime.servers.start(ADMIN, "alpha")
        server = runtime.supervisor.by_name("alpha")
        assert server.handle is not None
        pids.append(server.handle.pid)

        async def linked() -> bool:
            return server.link is not None

        await eventually(linked, 10, "the game link")
        link = profile.link("alpha")
        link.join(OnlinePlayer("0", "Ann", ip="192.0.2.1"))
        link.join(OnlinePlayer("1", "Bob", ip="192.0.2.2"))

        def stored(count: int) -> Callable[[], Awaitable[Any]]:
            return lambda: runtime.db.fetchval(
                "SELECT COUNT(*) FROM metrics WHERE server_id = ? AND players = ?",
                (created.id, count),
            )

        await eventually(stored(2), 10, "a sample with two players")
        link.leave("1")
        await eventually(stored(1), 10, "a sample with one player")
        await runtime.servers.stop(ADMIN, "alpha")

        chart = await runtime.stats.server_chart("alpha", "1h")
        summary = chart.summary
        assert chart.server == "alpha" and summary.period == "1h"
        assert summary.players_peak == 2
        assert summary.players_avg is not None and 0 < summary.players_avg <= 2
        assert summary.samples >= 2 and summary.ram_peak is not None and summary.ram_peak > 1e6
        assert (summary.starts, summary.stops, summary.crashes) == (1, 1, 0)
        assert decode_size(chart.png) == (WIDTH_PX, HEIGHT_PX)

        sample = await runtime.stats.sample_host()
        assert sample.ram_total > sample.ram_used > 0 and 0 <= sample.cpu_percent <= 100
        host = await runtime.stats.host_chart("1h")
        assert host.summary.points == 1 and host.summary.ram_total == sample.ram_total
        assert decode_size(host.png) == (WIDTH_PX, HOST_HEIGHT_PX)
    finally:
        async with asyncio.timeout(30):
            await runtime.close()
        kill_groups(pids)


async def test_refusals_name_the_period_and_the_server(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_period("2w")
    assert info.value.template == "unknown period {period!r}: choose 1h, 24h, 7d or 30d"
    assert parse_period(" 7D ").step == 600
    async with supervised(tmp_path) as env:
        stats = StatsService(env.supervisor, env.db)
        with pytest.raises(NotFound):
            await stats.server_chart("nobody", "24h")


# -- compaction ------------------------------------------------------------------------------


async def fill(db: Database, days: float, every: float = 60.0) -> tuple[list[int], list[float]]:
    """Two servers with `days` of samples before NOW; every 7th sample without a player count."""
    servers = [(await ServerRepository(db).create(n, "fake")).id for n in ("alpha", "bravo")]
    metrics = MetricsRepository(db)
    stamps = [NOW - days * DAY + i * every + 1.5 for i in range(int(days * DAY / every))]
    for sid in servers:
        await metrics.add_many(
            MetricSample(
                sid,
                ts,
                10 + (i % 50) / 10,
                2**30 + (i % 90) * 2**20,
                None if i % 7 == 0 else (i // 37) % 12,
            )
            for i, ts in enumerate(stamps)
        )
    return servers, stamps


def floor(ts: float, step: int) -> int:
    return int(ts // step) * step


async def totals(db: Database) -> tuple[int, int, int]:
    """Samples held raw, in 1-minute rows and in 15-minute rows."""
    raw = int(await db.fetchval("SELECT COUNT(*) FROM metrics"))
    folded = "SELECT COALESCE(SUM(samples), 0) FROM metrics_rollup WHERE step = ?"
    minute = int(await db.fetchval(folded, (60,)))
    quarter = int(await db.fetchval(folded, (900,)))
    return raw, minute, quarter


def kept_raw(stamps: list[float]) -> int:
    return sum(1 for ts in stamps if ts >= floor(NOW - 2 * DAY, 60))


def assert_same_history(before: list[SeriesPoint], after: list[SeriesPoint]) -> None:
    assert [p.ts for p in after] == [p.ts for p in before]
    for old, new in zip(before, after, strict=True):
        assert new.samples == old.samples
        assert new.cpu_avg == pytest.approx(old.cpu_avg, abs=0.06)
        assert new.cpu_max == pytest.approx(old.cpu_max, abs=0.06)
        assert new.rss_avg == pytest.approx(old.rss_avg, abs=1024)
        assert new.rss_max == pytest.approx(old.rss_max, abs=1024)
        assert new.players_max == old.players_max
        assert old.players_avg is not None and new.players_avg is not None
        assert new.players_avg == pytest.approx(old.players_avg, abs=0.01)


async def test_compaction_keeps_every_sample_once_at_each_resolution(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "languard.db")
    try:
        servers, stamps = await fill(db, days=33)
        count = len(stamps)
        metrics = MetricsRepository(db)
        before = {s: await metrics.history(s, EARLIER, NOW, DAY_STEP) for s in servers}

        report = await metrics.compact(NOW, Retention(), batch_rows=4000)

        raw, minute, quarter = await totals(db)
        assert raw + minute + quarter == 2 * count
        assert report.folded_raw == 2 * count - raw
        # the last two days stay raw; what is older than 30 days is in 15-minute rows
        assert raw == 2 * kept_raw(stamps)
        quarter_cut = floor(NOW - 30 * DAY, 900)
        assert quarter == 2 * sum(1 for ts in stamps if floor(ts, 60) < quarter_cut)
        assert minute > 0
        span = await db.fetchone(
            "SELECT MIN(bucket), MAX(bucket) FROM metrics_rollup WHERE step = 60"
        )
        assert span is not None and span[0] >= quarter_cut and span[1] < NOW - 2 * DAY
        assert report.batches > (2 * count - raw) // 4000
        for sid in servers:
            assert_same_history(before[sid], await metrics.history(sid, EARLIER, NOW, DAY_STEP))

        again = await metrics.compact(NOW, Retention(), batch_rows=4000)
        assert (again.batches, again.folded_raw, again.folded_minutes) == (0, 0, 0)
        assert await totals(db) == (raw, minute, quarter)

        # a year on, everything has been folded to 15 minutes and dropped, in bounded batches
        later = await metrics.compact(NOW + 400 * DAY, Retention(), batch_rows=500)
        assert later.dropped == 2 * len({floor(ts, 900) for ts in stamps})
        assert later.batches > later.dropped // 500
        assert await totals(db) == (0, 0, 0)
    finally:
        await db.close()


async def test_other_writes_go_through_between_batches(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "languard.db")
    try:
        servers, stamps = await fill(db, days=4)
        metrics = MetricsRepository(db)
        written: list[float] = []

        async def meanwhile() -> None:  # the supervisor storing a fresh sample
            ts = NOW - 10 + len(written) / 1000
            await metrics.add_many([MetricSample(servers[0], ts, 1.0, 1, 3)])
            written.append(ts)

        report = await metrics.compact(NOW, Retention(), batch_rows=300, pause=meanwhile)
        folded = 2 * sum(1 for ts in stamps if ts < floor(NOW - 2 * DAY, 60))
        assert report.folded_raw == folded and report.batches >= folded // 300
        assert len(written) == report.batches  # a write between every two batches
        fresh = await db.fetchval("SELECT COUNT(*) FROM metrics WHERE ts >= ?", (NOW - 10,))
        assert fresh == len(written)
    finally:
        await db.close()


KILLED_COMPACTION = """
import asyncio, sys
from pathlib import Path
from data.db import Database
from data.repositories.telemetry import MetricsRepository, Retention

async def main() -> None:
    db = await Database.open(Path(sys.argv[1]))
    async def pause() -> None:
        await asyncio.sleep(0.002)
    now = float(sys.argv[2])
    await MetricsRepository(db).compact(now, Retention(), batch_rows=150, pause=pause)
    print("DONE", flush=True)

asyncio.run(main())
"""


async def test_kill_9_during_compaction_loses_and_doubles_nothing(tmp_path: Path) -> None:
    path = tmp_path / "languard.db"
    db = await Database.open(path)
    servers, stamps = await fill(db, days=33)
    count = len(stamps)
    before = {s: await MetricsRepository(db).history(s, EARLIER, NOW, DAY_STEP) for s in servers}
    await db.close()

    log = tmp_path / "compaction.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_COMPACTION, str(path), str(NOW)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    watcher = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        deadline = time.monotonic() + 60
        while True:  # kill it once a few batches are in, well before the end
            (rolled,) = watcher.execute("SELECT COUNT(*) FROM metrics_rollup").fetchone()
            if rolled >= 500:
                break
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the compaction did not start"
            await asyncio.sleep(0.01)
    finally:
        watcher.close()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL and "DONE" not in log.read_text(), "killed too late"

    db = await Database.open(path)
    try:
        raw, minute, quarter = await totals(db)
        assert raw < 2 * count, "some batches were committed before the kill"
        assert raw + minute + quarter == 2 * count, "every sample is counted exactly once"
        metrics = MetricsRepository(db)
        for sid in servers:  # half-folded or not, the charts read the same
            assert_same_history(before[sid], await metrics.history(sid, EARLIER, NOW, DAY_STEP))
        report = await metrics.compact(NOW, Retention(), batch_rows=4000)
        assert report.batches > 0
        assert sum(await totals(db)) == 2 * count
        assert (await totals(db))[0] == 2 * sum(
            1 for ts in stamps if ts >= floor(NOW - 2 * DAY, 60)
        )
        for sid in servers:
            assert_same_history(before[sid], await metrics.history(sid, EARLIER, NOW, DAY_STEP))
    finally:
        await db.close()
