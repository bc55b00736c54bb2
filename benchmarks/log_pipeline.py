"""Log pipeline throughput: tailer + parser + ring + bus, against Crafty's read-one-char way.

Run: .venv/bin/python benchmarks/log_pipeline.py [--lines N] [--baseline-lines N]

1. Writes an Arma RPT-like file (header block, short and full stamps, ~2 % warnings, ~1 %
   errors, some non-ASCII names) into a temp dir.
2. Follows it with a LogTailer driven by a running LogWatcher, a RingBuffer, and a bus
   subscriber that counts every line and level (so all lines provably arrived) — timed from
   the watcher's start until the subscriber has seen the last line.
3. Baseline, as Crafty Controller 4 reads server output (ServerOutBuf.check): a subprocess
   (`cat`) whose stdout pipe is read per byte with proc.poll() + read(1).decode() and a
   process_byte() state machine building lines. Also the bare loop (read(1) until EOF, no
   poll(), no method call) as a lower bound on that way's cost. Both run on a prefix of the
   file (default 100,000 lines), since the whole file would take minutes.
4. Idle cost: 50 servers x 2 logs (console.log + newest RPT in a profile folder) followed by
   one watcher for a few seconds with nothing written; CPU time of this process / wall time.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.events import EventBus, LogLines
from core.logs.lines import LineBatch, LogLevel
from core.logs.ring import RingBuffer
from core.logs.tailer import LogTailer, newest_file
from core.logs.watcher import LogWatcher

HEADER = """=====================================================================
== /srv/arma3/arma3server_x64
== "/srv/arma3/arma3server_x64" -port=2302 -profiles=/srv/arma3/profile -config=server.cfg

Original output filename: Arma3Retail_Server_x64
Exe timestamp: 2021/09/30 12:39:26
Current time:  2021/11/05 17:37:16

Type: Public
Build: Stable
Version: 2.06.148221
=====================================================================
"""
NAMES = ["Fritz", "Celis", "ARMATA", "MM Leon", "Максим", "Bravo17", "Kauldron", "Ødegård"]
INFO = [
    "Player {n} connecting.",
    "Player {n} connected (id=76561198117145527).",
    "Player {n} disconnected.",
    "BattlEye Server: Player #3 {n} (76.108.91.78:2304) connected",
    "BattlEye Server: (Global) {n}: anyone at the airfield?",
    "Mission co10_Escape.Altis read from bank.",
    "Roles assigned.",
    "Game started.",
    'Unit {n} moved to group B Alpha 1-2 "sector {i}"',
]
WARN = ["Warning Message: No entry 'bin\\config.bin/CfgWeapons.arifle_{i}'."]
ERROR = [
    "Error in expression <_unit setPos (getMarkerPos {i})>",
    "  Error position: <setPos (getMarkerPos {i})>",
    "  Error Undefined variable in expression: _unit",
]


def write_rpt(path: Path, count: int) -> tuple[int, int, int]:
    """Write `count` lines; returns (lines, warnings, errors) as the parser should see them."""
    rng = random.Random(7)
    header = HEADER.splitlines()
    warnings = errors = 0
    out: list[str] = list(header)
    for i in range(count - len(header)):
        hour, minute, second = (i // 3600) % 24, (i // 60) % 60, i % 60
        stamp = f"{hour:2d}:{minute:02d}:{second:02d} "
        if i % 997 == 0:
            stamp = f"2021/11/05, {hour:02d}:{minute:02d}:{second:02d} "
        roll = rng.random()
        if roll < 0.01:
            text, errors = rng.choice(ERROR), errors + 1
        elif roll < 0.03:
            text, warnings = rng.choice(WARN), warnings + 1
        else:
            text = rng.choice(INFO)
        out.append(stamp + text.format(n=rng.choice(NAMES), i=i))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return len(out), warnings, errors


async def run_pipeline(
    path: Path, expected: int, size: int, *, per_line: bool
) -> dict[str, float | int]:
    """Lines/s from the watcher's start until the subscriber has seen the last line.

    per_line=False: the subscriber counts lines and levels from the batch columns;
    per_line=True: it makes every LogLine object, as a line-by-line consumer would, and reads
    its level.
    """
    bus = EventBus()
    sub = bus.subscribe(LogLines)
    ring = RingBuffer()
    counts = {"lines": 0, "warning": 0, "error": 0, "end": 0}
    done = asyncio.get_running_loop().create_future()

    async def drain() -> None:
        async for event in sub:
            assert isinstance(event, LogLines)
            lines = event.lines
            assert isinstance(lines, LineBatch)
            counts["lines"] += len(lines)
            levels = [line.level for line in lines] if per_line else lines.levels
            counts["warning"] += levels.count(LogLevel.WARNING)
            counts["error"] += levels.count(LogLevel.ERROR)
            counts["end"] = event.end_offset
            if counts["lines"] >= expected and not done.done():
                done.set_result(None)

    reader = asyncio.create_task(drain())
    watcher = LogWatcher()
    tailer = LogTailer(1, "bench", "rpt", lambda: path, bus, ring=ring)
    watcher.add(tailer)
    started = time.perf_counter()
    watcher.start()
    await asyncio.wait_for(done, 120)
    seconds = time.perf_counter() - started
    await watcher.stop()
    tailer.close()
    sub.close()
    await reader
    assert counts["end"] == size, "the last batch must end at the end of the file"
    assert len(ring) == ring.max_lines
    return {**counts, "seconds": seconds}


class CraftyOutBuf:
    """Crafty Controller 4's ServerOutBuf reading loop (app/classes/shared/server.py).

    Per byte: proc.poll(), stdout.read(1).decode(), process_byte() with its line-separator
    state machine; per line: append to the line list, capped at max_lines. Its per-line
    new_line_handler (two re.sub, html.escape, colouring, websocket broadcast) is left out.
    """

    def __init__(self, proc: subprocess.Popen[bytes], max_lines: int = 5000) -> None:
        self.proc = proc
        self.max_lines = max_lines
        self.line_buffer = ""
        self.lines: list[str] = []
        self.count = 0
        self.lsi = 0

    def process_byte(self, char: str) -> None:
        if char == os.linesep[self.lsi]:
            self.lsi += 1
        else:
            self.lsi = 0
            self.line_buffer += char
        if self.lsi >= len(os.linesep):
            self.lsi = 0
            self.lines.append(self.line_buffer)
            self.count += 1
            self.line_buffer = ""
            if len(self.lines) > self.max_lines:
                self.lines.pop(0)

    def check(self) -> None:
        assert self.proc.stdout is not None
        while True:
            if self.proc.poll() is None:
                char = self.proc.stdout.read(1).decode("utf-8", "ignore")
                self.process_byte(char)
            else:
                flush = self.proc.stdout.read().decode("utf-8", "ignore")
                for char in flush:
                    self.process_byte(char)
                break


def run_crafty(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    buf = CraftyOutBuf(subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE))
    buf.check()
    return buf.count, time.perf_counter() - started


def run_read1(path: Path) -> tuple[int, float]:
    """The bare minimum of that way: read(1) until EOF, building lines; no poll(), no method."""
    started = time.perf_counter()
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    lines: list[str] = []
    line = ""
    while True:
        byte = proc.stdout.read(1)
        if not byte:
            break
        char = byte.decode("utf-8", "ignore")  # a non-ASCII character's bytes vanish, as there
        if char == "\n":
            lines.append(line)
            line = ""
        else:
            line += char
    proc.wait()
    return len(lines), time.perf_counter() - started


async def idle_cost(root: Path, servers: int, seconds: float) -> float:
    """CPU percent of one watcher following `servers` x 2 quiet logs."""
    bus = EventBus()
    watcher = LogWatcher()
    tailers = []
    for i in range(servers):
        folder = root / f"server{i}"
        profile = folder / "profile"
        profile.mkdir(parents=True)
        (folder / "console.log").write_text("started\n")
        for day in range(1, 21):  # an Arma profile folder keeps its old RPTs
            (profile / f"arma3server_x64_2024-05-{day:02d}_10-00-00.rpt").write_text("x\n")
        tailers.append(LogTailer(i, f"s{i}", "console", lambda f=folder: f / "console.log", bus))
        tailers.append(
            LogTailer(
                i, f"s{i}", "rpt", lambda p=profile: newest_file(p, "arma3server_x64_*.rpt"), bus
            )
        )
    for tailer in tailers:
        watcher.add(tailer)
    await watcher.flush()
    watcher.start()
    await asyncio.sleep(1.5)  # let the backoff reach the idle interval
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    used = (time.process_time() - cpu) / (time.perf_counter() - wall) * 100
    await watcher.stop()
    for tailer in tailers:
        tailer.close()
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--baseline-lines", type=int, default=100_000)
    parser.add_argument("--idle-servers", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="languard-bench-") as tmp:
        root = Path(tmp)
        rpt = root / "arma3server_x64_2021-11-05_17-37-16.rpt"
        lines, warnings, errors = write_rpt(rpt, args.lines)
        size = rpt.stat().st_size
        print(
            f"file: {lines:,} lines, {size / 1e6:.1f} MB, {warnings:,} warnings, {errors:,} errors"
        )

        result = asyncio.run(run_pipeline(rpt, lines, size, per_line=False))
        assert result["lines"] == lines, result
        assert (result["warning"], result["error"]) == (warnings, errors), result
        rate = lines / result["seconds"]
        print(f"pipeline: {lines:,} lines in {result['seconds']:.3f} s = {rate:,.0f} lines/s")
        walked = asyncio.run(run_pipeline(rpt, lines, size, per_line=True))
        assert (walked["lines"], walked["warning"], walked["error"]) == (lines, warnings, errors)
        walk_rate = lines / walked["seconds"]
        print(
            f"pipeline, subscriber touching every LogLine: {walked['seconds']:.3f} s"
            f" = {walk_rate:,.0f} lines/s"
        )

        prefix = root / "prefix.rpt"
        with rpt.open("rb") as src:
            prefix.write_bytes(b"".join(src.readline() for _ in range(args.baseline_lines)))
        base_lines, base_seconds = run_crafty(prefix)
        base_rate = base_lines / base_seconds
        print(
            f"baseline, Crafty's ServerOutBuf loop (cat | poll()+read(1) per byte),"
            f" first {base_lines:,} lines only: {base_seconds:.3f} s = {base_rate:,.0f} lines/s"
        )
        bare_lines, bare_seconds = run_read1(prefix)
        bare_rate = bare_lines / bare_seconds
        print(
            f"baseline, bare read(1) loop (no poll(), no method call),"
            f" first {bare_lines:,} lines only: {bare_seconds:.3f} s = {bare_rate:,.0f} lines/s"
        )
        print(
            f"speed-up: {rate / base_rate:.1f}x over Crafty's loop,"
            f" {rate / bare_rate:.1f}x over the bare read(1) loop"
            f" ({walk_rate / base_rate:.1f}x / {walk_rate / bare_rate:.1f}x touching every line)"
        )

        idle = asyncio.run(idle_cost(root / "idle", args.idle_servers, args.idle_seconds))
        print(f"idle: {args.idle_servers} servers x 2 logs, one watcher: {idle:.2f} % CPU")

    print(
        json.dumps(
            {
                "lines": lines,
                "seconds": round(result["seconds"], 4),
                "lines_per_s": round(rate),
                "lines_per_s_touching_each_line": round(walk_rate),
                "baseline_lines": base_lines,
                "baseline_seconds": round(base_seconds, 4),
                "baseline_lines_per_s": round(base_rate),
                "baseline": "crafty ServerOutBuf: poll()+read(1) per byte",
                "bare_read1_lines_per_s": round(bare_rate),
                "speedup": round(rate / base_rate, 1),
                "speedup_vs_bare_read1": round(rate / bare_rate, 1),
                "idle_logs": args.idle_servers * 2,
                "idle_cpu_percent": round(idle, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
