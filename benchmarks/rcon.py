"""BattlEye RCon against the fake server: our client and berconpy, same runs.

The fake runs as its own process, as a game server would.

Speed (no loss): latency of sequential commands (p50, p99) and commands/s with many in flight.
Targets: p50 < 1 ms, >= 5,000 commands/s, ahead of berconpy.

Loss: commands answered correctly out of sent, each within the caller's 30 s deadline, a mix
of `players` (multipart) and one-part commands, `--loss-in-flight` at a time. Two networks:
"issue" (issue 9 §7: 20% of the server's datagrams lost, 10% duplicated, 10% of the client's
lost, 40-player `players`, three parts) and "harsh" (30% / 20% / 20%, 20% reordered, 80
players, five parts). Both clients as a user runs them: ours with Arma3Link's settings (1 s,
2 retries), berconpy with its defaults. Target: every command answered in both.

Last line: one JSON object of the figures.
Usage: python benchmarks/rcon.py [--sequential 3000] [--total 30000] [--in-flight 128]
       [--loss-commands 300] [--loss-in-flight 10] [--skip-speed] [--skip-loss]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from berconpy import RCONClient  # noqa: E402

from core.rcon.battleye_client import BattlEyeClient  # noqa: E402
from tests.fakes.battleye_server import players_reply  # noqa: E402

PASSWORD = "bench-password"
COMMAND = "players"  # ~330-byte reply; a counter makes each command distinct, so the fake
# runs every one instead of answering a reused sequence number from its repeat cache

Send = Callable[[str], Awaitable[str]]

DEADLINE = 30.0  # what the caller gives one command
LOSS_RUNS: dict[str, dict[str, float]] = {
    "issue": {"outbound": 0.2, "inbound": 0.1, "duplicate": 0.1, "reorder": 0.0, "players": 40},
    "harsh": {"outbound": 0.3, "inbound": 0.2, "duplicate": 0.2, "reorder": 0.2, "players": 80},
}


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


def start_fake(*knobs: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.battleye_server", "--password", PASSWORD, *knobs],
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


def speed_run(args: argparse.Namespace) -> dict[str, Any]:
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
    return {
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


# --- loss ------------------------------------------------------------------------------------


async def answered(send: Send, args: argparse.Namespace, players: int) -> dict[str, Any]:
    """Send `--loss-commands` commands, `--loss-in-flight` at a time, each within DEADLINE;
    count the right answers, the wrong ones and each kind of failure."""
    limit = asyncio.Semaphore(args.loss_in_flight)
    expected_players = players_reply(players)
    right = wrong = 0
    errors: Counter[str] = Counter()

    async def one(n: int) -> None:
        nonlocal right, wrong
        command = f"version {n}" if n % 3 == 0 else f"players {n}"
        expected = "2.18.152302" if n % 3 == 0 else expected_players
        async with limit:
            try:
                async with asyncio.timeout(DEADLINE):
                    reply = await send(command)
            except Exception as exc:  # any client's error type: count it
                errors[type(exc).__name__] += 1
                return
        if reply == expected:
            right += 1
        else:
            wrong += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(args.loss_commands)))
    return {
        "sent": args.loss_commands,
        "answered": right,
        "wrong": wrong,
        "errors": dict(errors),
        "seconds": time.perf_counter() - started,
    }


async def connected(connect: Callable[[], Awaitable[None]], attempts: int = 20) -> int:
    """Log in under loss (a login is lost too); returns the attempts it took."""
    for attempt in range(1, attempts + 1):
        try:
            await connect()
            return attempt
        except Exception as exc:
            print(f"  login attempt {attempt} failed: {type(exc).__name__}: {exc}")
    raise SystemExit(f"no login after {attempts} attempts")


async def loss_ours(port: int, args: argparse.Namespace, players: int) -> dict[str, Any]:
    holder: list[BattlEyeClient] = []

    async def connect() -> None:
        client = BattlEyeClient("127.0.0.1", port, PASSWORD, timeout=1.0, retries=2)
        await client.connect()
        holder.append(client)

    await connected(connect)
    rcon = holder[0]
    try:
        row = await answered(rcon.command, args, players)
        row["part_conflicts"] = rcon.part_conflicts
        return row
    finally:
        await rcon.close()


async def loss_theirs(port: int, args: argparse.Namespace, players: int) -> dict[str, Any]:
    holder: list[RCONClient] = []
    stack = contextlib.AsyncExitStack()

    async def connect() -> None:
        client = RCONClient()  # a fresh one per attempt: a failed one stays closed
        await stack.enter_async_context(client.connect("127.0.0.1", port, PASSWORD))
        holder.append(client)

    # berconpy raises inside its datagram callback on some duplicated packets (e.g. a second
    # login reply); asyncio would print each traceback: count them in the row instead
    loop_errors: Counter[str] = Counter()

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        loop_errors["callback:" + type(context.get("exception")).__name__] += 1

    asyncio.get_running_loop().set_exception_handler(on_loop_error)
    async with stack:
        await connected(connect)
        row = await answered(holder[0].send_command, args, players)
    row["errors"] |= loop_errors
    return row


def loss_run(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    net = LOSS_RUNS[name]
    players = int(net["players"])
    proc, port = start_fake(
        *("--outbound-loss", str(net["outbound"]), "--inbound-loss", str(net["inbound"])),
        *("--duplicate", str(net["duplicate"]), "--reorder", str(net["reorder"])),
        *("--players", str(players), "--seed", str(args.seed)),
    )
    try:
        mine = asyncio.run(loss_ours(port, args, players))
        other = asyncio.run(loss_theirs(port, args, players))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return mine, other


def print_loss(name: str, mine: dict[str, Any], other: dict[str, Any]) -> None:
    net = LOSS_RUNS[name]
    print(
        f"loss run {name!r}: server sends lose {net['outbound']:.0%}, duplicate "
        f"{net['duplicate']:.0%}, reorder {net['reorder']:.0%}; server receives lose "
        f"{net['inbound']:.0%}; `players` lists {net['players']:.0f}; deadline {DEADLINE:g} s"
    )
    print(f"{'client':<10} {'answered':>12} {'wrong':>6} {'seconds':>8}  errors")
    for client, row in (("languard", mine), ("berconpy", other)):
        share = f"{row['answered']}/{row['sent']}"
        print(
            f"{client:<10} {share:>12} {row['wrong']:>6} {row['seconds']:>8.1f}  "
            f"{row['errors'] or '-'}"
        )


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=3000)
    parser.add_argument("--total", type=int, default=30000)
    parser.add_argument("--in-flight", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loss-commands", type=int, default=300)
    parser.add_argument("--loss-in-flight", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-loss", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {}
    if not args.skip_speed:
        result |= speed_run(args)
    if not args.skip_loss:
        for name in LOSS_RUNS:
            mine, other = loss_run(name, args)
            print_loss(name, mine, other)
            result |= {
                f"loss_{name}_sent": mine["sent"],
                f"loss_{name}_answered": mine["answered"],
                f"loss_{name}_wrong": mine["wrong"],
                f"loss_{name}_seconds": round(mine["seconds"], 1),
                f"berconpy_loss_{name}_answered": other["answered"],
                f"berconpy_loss_{name}_wrong": other["wrong"],
                f"berconpy_loss_{name}_seconds": round(other["seconds"], 1),
            }
            complete = mine["answered"] == mine["sent"]
            result["loss_targets_met"] = result.get("loss_targets_met", True) and complete
    print(json.dumps(result))


if __name__ == "__main__":
    main()
