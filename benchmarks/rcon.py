"""BattlEye RCon round trips against the fake server: our client and berconpy, same run.

The fake runs as its own process (no packet loss), as a game server would. Measured per client:
latency of sequential commands (p50, p99) and commands/s with many in flight.
Targets: p50 < 1 ms, >= 5,000 commands/s, ahead of berconpy. Last line: one JSON object.
Usage: python benchmarks/rcon.py [--sequential 3000] [--total 30000] [--in-flight 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from berconpy import RCONClient  # noqa: E402

from core.rcon.battleye_client import BattlEyeClient  # noqa: E402

PASSWORD = "bench-password"
COMMAND = "players"  # ~330-byte reply; a counter makes each command distinct, so the fake
# runs every one instead of answering a reused sequence number from its repeat cache

Send = Callable[[str], Awaitable[str]]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(send: Send, count: int) -> list[float]:
    """Milliseconds per command, one at a time."""
    samples = []
    clock = time.perf_counter
    for n in range(count):
        started = clock()
        await send(f"{COMMAND} {n}")
        samples.append((clock() - started) * 1000)
    return samples


async def throughput(send: Send, total: int, in_flight: int) -> float:
    """Commands per second with `in_flight` workers each sending back to back."""
    per_worker = total // in_flight

    async def worker(w: int) -> None:
        for n in range(per_worker):
            await send(f"{COMMAND} {w}.{n}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    return per_worker * in_flight / (time.perf_counter() - started)


def counting_failures(send: Send, failures: list[str]) -> Send:
    """A failed command is recorded and the run goes on (berconpy raises on a lost reply)."""

    async def guarded(command: str) -> str:
        try:
            return await send(command)
        except Exception as exc:  # any client's error type: count it, report it
            failures.append(f"{type(exc).__name__}: {exc}")
            return ""

    return guarded


async def measure(raw_send: Send, args: argparse.Namespace) -> dict[str, float]:
    failures: list[str] = []
    send = counting_failures(raw_send, failures)
    reply = await raw_send(COMMAND)
    if not reply.startswith("Players on server:"):
        raise SystemExit(f"unexpected reply: {reply[:60]!r}")
    await latency(send, 300)  # warm up
    samples = await latency(send, args.sequential)
    rates = [await throughput(send, args.total, args.in_flight) for _ in range(args.rounds)]
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": percentile(samples, 0.99),
        "commands_per_s": max(rates),
        "failures": len(failures),
    }


async def ours(port: int, args: argparse.Namespace) -> dict[str, float]:
    async with BattlEyeClient("127.0.0.1", port, PASSWORD, timeout=2.0) as rcon:
        return await measure(rcon.command, args)


async def theirs(port: int, args: argparse.Namespace) -> dict[str, float]:
    client = RCONClient()
    async with client.connect("127.0.0.1", port, PASSWORD):
        return await measure(client.send_command, args)


def start_fake() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.battleye_server", "--password", PASSWORD],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, int(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=3000)
    parser.add_argument("--total", type=int, default=30000)
    parser.add_argument("--in-flight", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    proc, port = start_fake()
    try:
        mine = asyncio.run(ours(port, args))
        other = asyncio.run(theirs(port, args))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"fake BattlEye server pid {proc.pid} on 127.0.0.1:{port}; command {COMMAND!r} <n>")
    print(f"{'client':<10} {'p50 ms':>8} {'p99 ms':>8} {'commands/s':>11} {'failed':>7}")
    for name, row in (("languard", mine), ("berconpy", other)):
        print(
            f"{name:<10} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} "
            f"{row['commands_per_s']:>11,.0f} {row['failures']:>7.0f}"
        )
    result = {
        "p50_ms": round(mine["p50_ms"], 4),
        "p99_ms": round(mine["p99_ms"], 4),
        "commands_per_s": round(mine["commands_per_s"]),
        "berconpy_p50_ms": round(other["p50_ms"], 4),
        "berconpy_p99_ms": round(other["p99_ms"], 4),
        "berconpy_commands_per_s": round(other["commands_per_s"]),
        "failures": int(mine["failures"]),
        "berconpy_failures": int(other["failures"]),
        "in_flight": args.in_flight,
        "targets_met": mine["p50_ms"] < 1.0
        and mine["commands_per_s"] >= 5000
        and mine["commands_per_s"] > other["commands_per_s"]
        and mine["failures"] == 0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
