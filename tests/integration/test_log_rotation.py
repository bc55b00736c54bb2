"""Rotating console.log while a writer appends to it with O_APPEND, as the game does.

Real files on the test's filesystem (ext4 here: FALLOC_FL_COLLAPSE_RANGE), the punch-hole
fallback forced by hiding collapse, and a real kill -9 of a process at every step of a
rotation; each test checks that every line is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import core.logs.rotation as rotation
from core.events import EventBus, LogLines, Subscription
from core.logs.rotation import RotationPolicy, rotate_log, rotated_paths
from core.logs.rotation_state import load_state
from core.logs.tailer import LogPosition, LogTailer

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"line (\d+) .*")


def numbered(start: int, count: int) -> bytes:
    return b"".join(b"line %07d %s\n" % (n, b"x" * (n % 37)) for n in range(start, start + count))


def texts(sub: Subscription) -> list[str]:
    found: list[str] = []
    while (event := sub.get_nowait()) is not None:
        assert isinstance(event, LogLines)
        found += [line.text for line in event.lines]
    return found


def numbers(lines: list[str]) -> list[int]:
    out = []
    for text in lines:
        match = LINE.fullmatch(text)
        assert match, text
        out.append(int(match.group(1)))
    return out


@pytest.fixture(params=["collapse", "punch"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test runs with the filesystem's collapse and with the punch-hole fallback."""
    monkeypatch.setattr(rotation, "_MODES", {})
    if request.param == "punch":
        monkeypatch.setattr(rotation, "collapse", lambda fd, length: False)
    yield request.param


def tailer_on(path: Path, bus: EventBus, start: LogPosition | None = None) -> LogTailer:
    return LogTailer(1, "alpha", "console", lambda: path, bus, start=start, rotatable=True)


async def test_rotation_under_a_live_appender_loses_and_repeats_nothing(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "console.log"
    writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)  # the game's stdout
    bus = EventBus()
    sub = bus.subscribe(LogLines)
    tailer = tailer_on(path, bus)
    policy = RotationPolicy(max_bytes=64 * 1024, keep=2)
    stop = threading.Event()
    written = [0]

    def game() -> None:
        while not stop.is_set() and written[0] < 40_000:
            os.write(writer, numbered(written[0], 50))
            written[0] += 50
            stop.wait(0.002)  # a busy game, not a flood: many rotations happen meanwhile

    thread = threading.Thread(target=game)
    thread.start()
    seen: list[str] = []
    cut = 0
    try:
        async with asyncio.timeout(60):
            while thread.is_alive():
                tailer.poll()
                seen += texts(sub)
                cut += await rotate_log(tailer, tailer.position.offset, policy)
                await asyncio.sleep(0.005)
    finally:
        stop.set()
        thread.join()
        os.close(writer)
    tailer.poll()
    seen += texts(sub)
    assert numbers(seen) == list(range(written[0])), "a line lost or repeated"
    assert cut > 3 * policy.max_bytes, "it rotated many times"
    held = path.stat().st_size - tailer.held_from
    assert held < 4 * policy.max_bytes
    assert [p.exists() for p in rotated_paths(path, 3)] == [True, True, False]
    state = load_state(path)
    assert state is not None and state.pending is None
    if mode == "collapse":
        assert path.stat().st_size == held, "collapsed: no hole left"
    else:
        assert path.stat().st_blocks * 512 < 4 * policy.max_bytes + 64 * 1024, "punched"
    # the rotated copies and the live file are one stream: the newest lines in order
    stream = b"".join(p.read_bytes() for p in reversed(rotated_paths(path, 2)))
    stream += path.read_bytes()[tailer.held_from :]
    tail_numbers = numbers(stream.decode().splitlines()[1:])
    assert tail_numbers == list(range(tail_numbers[0], written[0]))
    tailer.close()


async def test_a_restarted_reader_resumes_exactly_after_rotations(
    tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(numbered(0, 5000))
    bus = EventBus()
    sub = bus.subscribe(LogLines)
    first = tailer_on(path, bus)
    first.poll()
    assert numbers(texts(sub)) == list(range(5000))
    saved = first.position
    assert await rotate_log(first, saved.offset, RotationPolicy(max_bytes=1024, keep=1)) > 0
    first.close()
    with path.open("ab") as f:
        f.write(numbered(5000, 10))

    second = tailer_on(path, bus, start=saved)  # what the bot saved before it stopped
    second.poll()
    assert numbers(texts(sub)) == list(range(5000, 5010))
    assert second.position.file_id == saved.file_id, "the file keeps its id"
    assert second.position.offset == saved.offset + len(numbered(5000, 10))
    second.close()

    behind = LogPosition(saved.file_id, 100)  # a consumer far behind: its bytes are gone
    third = tailer_on(path, bus, start=behind)
    third.poll()
    resumed = numbers(texts(sub))
    assert resumed == list(range(resumed[0], 5010)), "from the first whole line still held"
    third.close()


_CHILD = """
import asyncio, json, os, signal, sys
from pathlib import Path
import core.logs.rotation as rotation
from core.events import EventBus
from core.logs.rotation import RotationPolicy
from core.logs.tailer import LogTailer

path, step = Path(sys.argv[1]), sys.argv[2]

def die(at):
    if at == step:
        os.kill(os.getpid(), signal.SIGKILL)

keep_head, save_state, collapse = rotation._keep_head, rotation.save_state, rotation.collapse

def keep_head_then(*args):
    keep_head(*args)
    die("copied")

def save_state_then(p, state):
    save_state(p, state)
    die("pending" if state.pending is not None else "committed")

def collapse_then(fd, length):
    done = collapse(fd, length)
    die("cut")
    return done

rotation.cut_mode(path.parent, os.stat(path).st_blksize)  # probed once, before the hooks
rotation._keep_head, rotation.save_state = keep_head_then, save_state_then
rotation.collapse = collapse_then
tailer = LogTailer(1, "alpha", "console", lambda: path, EventBus(), rotatable=True)
tailer.poll()
print(json.dumps([tailer.position.file_id, tailer.position.offset]), flush=True)
asyncio.run(rotation.rotate_log(tailer, tailer.position.offset, RotationPolicy(1024, 2)))
print("finished", flush=True)
"""


@pytest.mark.parametrize("step", ["copied", "pending", "cut", "committed"])
async def test_kill_9_at_any_step_of_a_rotation_loses_and_repeats_nothing(
    tmp_path: Path, step: str
) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(numbered(0, 4000))
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), step],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    file_id, offset = json.loads(proc.stdout.splitlines()[0])  # what the bot had committed
    size_before = len(numbered(0, 4000))
    cut = step in ("cut", "committed")
    assert (path.stat().st_size < size_before) == cut
    assert rotated_paths(path, 1)[0].exists(), "the copy comes first"
    with path.open("ab") as f:  # the game went on writing while no bot was there
        f.write(numbered(4000, 25))

    bus = EventBus()
    sub = bus.subscribe(LogLines)
    tailer = tailer_on(path, bus, start=LogPosition(file_id, offset))
    tailer.poll()
    assert numbers(texts(sub)) == list(range(4000, 4025)), "exactly what came after"
    # and the file rotates on from whatever state the kill left
    with path.open("ab") as f:
        f.write(numbered(4025, 500))
    tailer.poll()
    assert await rotate_log(tailer, tailer.position.offset, RotationPolicy(1024, 2)) > 0
    with path.open("ab") as f:
        f.write(numbered(4525, 5))
    tailer.poll()
    assert numbers(texts(sub)) == list(range(4025, 4530))
    saved = tailer.position
    tailer.close()
    again = tailer_on(path, bus, start=saved)
    again.poll()
    assert texts(sub) == []
    assert again.position == saved
    again.close()
