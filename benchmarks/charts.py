"""History and charts: a busy server's 7-day chart, and the storage a server-year takes.

1. A busy server's week as the bot keeps it (2 days of 15 s samples, then 1-minute rows
   made by the real compaction pass), with a daily restart and two crashes. Timed:
   `StatsService.server_chart(server, "7d")` end to end (the query, and the render in a
   worker thread), and the render alone. Target: under 300 ms.
2. A year and a bit of 15 s samples for a few servers, fed a simulated day at a time, each
   day followed by the real compaction pass: what the history takes per server once it
   is in its steady state (2 days raw, 30 days of 1-minute rows, a year of 15-minute rows).

Last line: one JSON object.
Usage: python benchmarks/charts.py [--renders 20] [--servers 2] [--days 380]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet

from core.charts import render_server_chart
from core.events import EventBus
from core.games.base import ProfileRegistry
from core.secrets import SecretBox
from core.services.stats import PERIODS, StatsService
from core.supervisor.supervisor import Supervisor
from data.db import Database
from data.repositories.history import HistoryRepository
from data.repositories.servers import ServerRepository
from data.repositories.telemetry import MetricSample, MetricsRepository, Retention
from tests.fakes.fake_profile import FakeProfile

DAY = 86400
INTERVAL = 15
NOW = 1_750_000_000.0 // DAY * DAY + 21 * 3600  # an evening, so the week ends busy
TARGET_MS = 300.0


def busy_day(server_id: int, start: float, rng: random.Random) -> list[MetricSample]:
    """A day of a popular server: players follow the evening, CPU and RAM follow them."""
    samples = []
    for i in range(DAY // INTERVAL):
        ts = start + i * INTERVAL + rng.random()
        hour = (ts % DAY) / 3600
        crowd = math.sin(math.pi * max(0.0, hour - 8) / 16) ** 2 if hour >= 8 else 0.05
        players = max(0, round(64 * crowd + rng.gauss(0, 2)))
        cpu = 30 + players * 3.2 + rng.gauss(0, 8)
        rss = int((4.0 + players / 32 + rng.random() * 0.1) * 2**30)
        samples.append(MetricSample(server_id, ts, max(cpu, 0.0), rss, players))
    return samples


async def render_times(renders: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "languard.db")
        record = await ServerRepository(db).create("busy", "fake")
        metrics, history = MetricsRepository(db), HistoryRepository(db)
        rng = random.Random(7)
        for day in range(7, 0, -1):
            await metrics.add_many(busy_day(record.id, NOW - day * DAY, rng))
            restart = NOW - day * DAY + 6 * 3600  # the daily 06:00 restart
            await history.add(record.id, "transition", {"new": "stopped"}, ts=restart)
            await history.add(record.id, "transition", {"new": "running"}, ts=restart + 90)
        for ts in (NOW - 4.3 * DAY, NOW - 1.6 * DAY):
            await history.add(record.id, "crash", {"exit_code": 139}, ts=ts)
            await history.add(record.id, "transition", {"new": "running"}, ts=ts + 30)
        await metrics.compact(NOW, Retention())
        supervisor = Supervisor(
            db=db,
            bus=EventBus(),
            data_dir=Path(tmp) / "data",
            profiles=ProfileRegistry([FakeProfile()]),
            secret_box=SecretBox(Fernet.generate_key()),
        )
        await supervisor.start()
        stats = StatsService(supervisor, db, tz=UTC, clock=lambda: NOW)
        raw = await db.fetchval("SELECT COUNT(*) FROM metrics")
        minute = await db.fetchval("SELECT COUNT(*) FROM metrics_rollup")
        try:
            began = time.perf_counter()
            chart = await stats.server_chart("busy", "7d")
            cold = time.perf_counter() - began
            totals = []
            for _ in range(renders):
                began = time.perf_counter()
                chart = await stats.server_chart("busy", "7d")
                totals.append(time.perf_counter() - began)
            period = PERIODS["7d"]
            points = await metrics.history(record.id, NOW - period.seconds, NOW, period.step)
            marks = await metrics.marks(record.id, NOW - period.seconds, NOW)
            drawing = []
            cpu_began = time.process_time()
            for _ in range(renders):
                began = time.perf_counter()
                render_server_chart(
                    points,
                    marks,
                    since=NOW - period.seconds,
                    until=NOW,
                    step=period.step,
                    tz=UTC,
                )
                drawing.append(time.perf_counter() - began)
            cpu_ms = (time.process_time() - cpu_began) / renders * 1000
        finally:
            await supervisor.close()
            await db.close()
    median = statistics.median(totals) * 1000
    print(f"7-day chart of a busy server: {raw} raw samples + {minute} 1-minute rows")
    print(f"  {len(points)} points, {len(marks)} marks, PNG {len(chart.png) / 1024:.0f} KiB")
    print(f"  first chart (cold, loads fonts): {cold * 1000:.0f} ms")
    print(
        f"  chart end to end: median {median:.0f} ms, max {max(totals) * 1000:.0f} ms "
        f"over {renders} (target < {TARGET_MS:.0f} ms)"
    )
    print(
        f"  render alone: median {statistics.median(drawing) * 1000:.0f} ms, "
        f"{cpu_ms:.0f} ms of CPU (what a busy machine stretches)"
    )
    return {
        "chart_7d_ms_median": round(median, 1),
        "chart_7d_ms_max": round(max(totals) * 1000, 1),
        "chart_7d_ms_cold": round(cold * 1000, 1),
        "render_7d_ms_median": round(statistics.median(drawing) * 1000, 1),
        "render_7d_cpu_ms": round(cpu_ms, 1),
        "chart_points": len(points),
        "png_bytes": len(chart.png),
    }


async def storage(servers: int, days: int) -> dict[str, float]:
    retention = Retention()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "languard.db"
        db = await Database.open(path)
        ids = [(await ServerRepository(db).create(f"s{n}", "fake")).id for n in range(servers)]
        metrics = MetricsRepository(db)
        rng = random.Random(11)
        start = NOW - days * DAY
        began = time.perf_counter()
        compact_seconds = 0.0
        for day in range(days):
            day_start = start + day * DAY
            for sid in ids:
                await metrics.add_many(busy_day(sid, day_start, rng))
            tick = time.perf_counter()
            await metrics.compact(day_start + DAY, retention)
            compact_seconds += time.perf_counter() - tick
        elapsed = time.perf_counter() - began
        rows = {
            "raw": await db.fetchval("SELECT COUNT(*) FROM metrics"),
            "minute": await db.fetchval("SELECT COUNT(*) FROM metrics_rollup WHERE step = 60"),
            "quarter": await db.fetchval("SELECT COUNT(*) FROM metrics_rollup WHERE step = 900"),
        }
        tables = ("metrics", "metrics_by_server", "metrics_rollup")
        sizes = {
            name: int(size)
            for name, size in await db.fetchall(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
            )
            if name in tables
        }
        page_size = await db.fetchval("PRAGMA page_size")
        live_pages = await db.fetchval("PRAGMA page_count") - await db.fetchval(
            "PRAGMA freelist_count"
        )
        await db.close()
    per_server = sum(sizes.values()) / servers
    print(
        f"a year of history: {servers} busy servers x {days} days of {INTERVAL} s samples, "
        f"compacted daily ({elapsed:.0f} s, of which compaction {compact_seconds:.0f} s)"
    )
    for tier, count in rows.items():
        print(f"  {tier:>7} rows per server: {count / servers:,.0f}")
    for name in tables:
        print(f"  {name:>17}: {sizes.get(name, 0) / servers / 2**20:.2f} MiB per server")
    print(f"  storage per server-year: {per_server / 2**20:.2f} MiB")
    print(f"  50 servers: {50 * per_server / 2**20:.0f} MiB (whole file: {live_pages} pages)")
    return {
        "servers": servers,
        "days": days,
        "bytes_per_server_year": int(per_server),
        "mib_per_server_year": round(per_server / 2**20, 2),
        "mib_for_50_servers": round(50 * per_server / 2**20, 1),
        "rows_per_server": {k: int(v) // servers for k, v in rows.items()},
        "page_size": int(page_size),
        "simulate_seconds": round(elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--days", type=int, default=380)
    args = parser.parse_args()
    figures = asyncio.run(render_times(args.renders))
    figures.update(asyncio.run(storage(args.servers, args.days)))
    figures["chart_under_target"] = figures["chart_7d_ms_median"] < TARGET_MS
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
