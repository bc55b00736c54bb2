"""Interaction latency: the real bot on the fake Discord, 1,000 mixed commands as gateway events.

Measured per interaction: from the fake creating and sending INTERACTION_CREATE on the
gateway to the bot's initial callback (reply, defer or autocomplete result) arriving at the
fake's HTTP route -- the part Discord's 3-second deadline applies to. Commands are fired one
after another (the next one as soon as the previous one's callback arrived), so deferred work
(follow-ups of /host, /server status...) overlaps later commands, as it would in a guild.

One fake Arma 3 server runs behind the bot, so /logs tail and /server status have something
to show. Target: p99 <= 50 ms. Last line printed: one JSON object.
Usage: python benchmarks/interactions.py [--count 1000] [--warmup 50] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # discord.py imports the deprecated stdlib audioop
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from tests.e2e.fake_discord import InteractionHandle  # noqa: E402
from tests.e2e.product import Product, is_error, open_product  # noqa: E402

SERVER = "bench"
TARGET_P99_MS = 50.0

Fire = Callable[[Product], Awaitable[InteractionHandle]]


def _mix() -> list[tuple[str, Fire]]:
    """What a busy guild sends: reads by viewers, operator look-ups, typing with autocomplete."""

    def slash(name: str, options: dict[str, object] | None = None, who: str = "viewer") -> Fire:
        async def fire(p: Product) -> InteractionHandle:
            return await p.run(name, options or {}, user=getattr(p.cast, who))

        return fire

    def typing(name: str, options: dict[str, object], focused: str) -> Fire:
        async def fire(p: Product) -> InteractionHandle:
            return await p.fake.invoke_autocomplete(
                name, options, focused=focused, user=p.cast.operator
            )

        return fire

    return [
        ("/server list", slash("server list")),
        ("/host", slash("host")),
        ("/perms list", slash("perms list")),
        ("/logs tail", slash("logs tail", {"server": SERVER, "lines": 20}, "operator")),
        ("/server status", slash("server status", {"server": SERVER})),
        ("autocomplete server", typing("server status", {"server": "be"}, "server")),
        ("/players list", slash("players list", {"server": SERVER})),
        ("/missions list", slash("missions list", {"server": SERVER})),
        ("/schedule list", slash("schedule list")),
        ("/bans list", slash("bans list", {}, "moderator")),
        ("autocomplete ban", typing("bans remove", {"ban": "#"}, "ban")),
        ("/audit", slash("audit", {"limit": 15}, "owner")),
    ]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _settle(handles: list[InteractionHandle]) -> int:
    """Wait for every answer to be filled in; count the ones that were errors."""
    errors = 0
    for handle in handles:
        record = await handle.response(10)
        if record.type == 8:  # autocomplete: the callback is the whole answer
            continue
        msg = await handle.message(10)
        if msg.loading or is_error(msg):
            errors += 1
        errors += sum(1 for m in handle.followups if is_error(m))
    return errors


async def run(count: int, warmup: int, profiler: cProfile.Profile | None) -> dict[str, object]:
    mix = _mix()
    with tempfile.TemporaryDirectory(prefix="languard-bench-") as tmp:
        async with open_product(Path(tmp)) as product:
            await product.create_server(SERVER, start=True)
            for n in range(warmup):
                _, fire = mix[n % len(mix)]
                await (await fire(product)).response(10)
            by_kind: dict[str, list[float]] = {name: [] for name, _ in mix}
            samples: list[float] = []
            handles: list[InteractionHandle] = []
            if profiler is not None:
                profiler.enable()
            started = time.perf_counter()
            for n in range(count):
                name, fire = mix[n % len(mix)]
                handle = await fire(product)
                record = await handle.response(10)
                assert record.accepted, f"{name}: callback refused ({record.status})"
                age_ms = record.age * 1000
                samples.append(age_ms)
                by_kind[name].append(age_ms)
                handles.append(handle)
            elapsed = time.perf_counter() - started
            if profiler is not None:
                profiler.disable()
            errors = await _settle(handles)
    print(f"{'command':<22} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in by_kind.items():
        print(
            f"{name:<22} {len(values):>5} {statistics.median(values):>8.2f} "
            f"{percentile(values, 0.99):>8.2f} {max(values):>8.2f}"
        )
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    verdict = "meets" if p99 <= TARGET_P99_MS else "MISSES"
    print(
        f"all: {count} interactions in {elapsed:.1f} s; p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"max {max(samples):.2f} ms ({verdict} the {TARGET_P99_MS:g} ms p99 target); "
        f"{errors} error answers"
    )
    return {
        "benchmark": "interactions",
        "count": count,
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(max(samples), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "error_answers": errors,
        "per_second": round(count / elapsed, 1),
        "target_p99_ms": TARGET_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the timed part")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("discord").setLevel(logging.ERROR)
    profiler = cProfile.Profile() if args.profile else None
    result = asyncio.run(run(args.count, args.warmup, profiler))
    if profiler is not None:
        profiler.dump_stats(args.profile)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
