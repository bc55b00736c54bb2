"""LogTailer and LogWatcher against real files: appends, new files, truncation, restarts."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import EventBus, LogLines, Subscription
from core.logs.lines import LogLevel
from core.logs.ring import RingBuffer
from core.logs.tailer import LogPosition, LogTailer, newest_file, position_at_end
from core.logs.watcher import LogWatcher

RPT = "arma3server_x64_*.rpt"


def rpt_name(n: int) -> str:
    return f"arma3server_x64_2024-05-01_10-00-{n:02d}.rpt"


class Rig:
    """A tailer on a bus, with the events it published so far."""

    def __init__(self, locate: Callable[[], Path | None], **options: object) -> None:
        self.bus = EventBus()
        self.sub: Subscription = self.bus.subscribe(LogLines)
        self.tailer = LogTailer(7, "alpha", "rpt", locate, self.bus, **options)
        self.events: list[LogLines] = []

    def poll(self) -> list[str]:
        """Poll once; the texts of the lines it published."""
        self.tailer.poll()
        new: list[LogLines] = []
        while (event := self.sub.get_nowait()) is not None:
            assert isinstance(event, LogLines)
            new.append(event)
        self.events += new
        return [line.text for event in new for line in event.lines]

    def close(self) -> None:
        self.tailer.close()
        self.sub.close()


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def open_files() -> list[str]:
    """What this process's descriptors point at (Linux)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # the descriptor listdir itself used
            continue
    return targets


def check_contiguous(events: list[LogLines]) -> None:
    """Within a file, each batch starts where the previous one ended, and ends match lines."""
    last: dict[str, int] = {}
    for event in events:
        assert event.start_offset == last.get(event.file_id, 0)
        assert event.lines[-1].end == event.end_offset
        last[event.file_id] = event.end_offset


def test_waits_for_a_missing_file_then_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    rig = Rig(lambda: path)
    assert rig.poll() == []
    assert rig.tailer.caught_up
    assert rig.tailer.position == LogPosition("", 0)
    path.write_bytes(b"Game started.\n")
    assert rig.poll() == ["Game started."]
    event = rig.events[0]
    assert (event.server_id, event.server, event.source) == (7, "alpha", "rpt")
    assert rig.tailer.position == LogPosition(event.file_id, 14)
    rig.close()


def test_a_line_split_across_writes_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"")
    rig = Rig(lambda: path)
    assert rig.poll() == []
    append(path, b"hel")
    assert rig.poll() == []
    assert rig.tailer.position.offset == 0
    append(path, b"lo\nwor")
    assert rig.poll() == ["hello"]
    append(path, b"ld\nthird\nfou")
    assert rig.poll() == ["world", "third"]
    append(path, b"rth\n")
    assert rig.poll() == ["fourth"]
    check_contiguous(rig.events)
    assert [line.end for e in rig.events for line in e.lines] == [6, 12, 18, 25]
    assert rig.tailer.position.offset == path.stat().st_size
    rig.close()


def test_crlf_invalid_utf8_and_a_character_split_across_writes(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    rig = Rig(lambda: path)
    path.write_bytes(b"one\r\ntwo \xff end\r\n\xd0")
    assert rig.poll() == ["one", "two \ufffd end"]
    append(path, b"\x9c\xd0\xb0x\r\n")  # completes a Cyrillic M, then "ax"
    assert rig.poll() == ["\u041c\u0430x"]
    assert rig.events[-1].end_offset == path.stat().st_size
    check_contiguous(rig.events)
    rig.close()


def test_new_rpt_appearing_while_the_old_still_gets_lines(tmp_path: Path) -> None:
    old, new = tmp_path / rpt_name(1), tmp_path / rpt_name(2)
    old.write_bytes(b" 7:00:00 old 1\n")
    rig = Rig(lambda: newest_file(tmp_path, RPT))
    assert rig.poll() == [" 7:00:00 old 1"]
    old_id = rig.tailer.position.file_id
    new.write_bytes(b" 8:00:00 new 1\n")
    append(old, b" 7:00:01 old 2\n 7:00:02 old, unfinished")
    append(new, b" 8:00:01 new 2\n")
    assert rig.poll() == [
        " 7:00:01 old 2",
        " 7:00:02 old, unfinished",
        " 8:00:00 new 1",
        " 8:00:01 new 2",
    ]
    assert [e.file_id == old_id for e in rig.events] == [True, True, True, False]
    assert rig.events[2].end_offset == old.stat().st_size  # the unfinished line was flushed
    assert rig.tailer.path == new
    assert rig.tailer.position.offset == new.stat().st_size
    assert rig.tailer.position.file_id != old_id
    check_contiguous(rig.events)
    rig.close()


def test_truncation_restarts_at_zero_with_a_new_file_id(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"first run line 1\nfirst run line 2\n")
    rig = Rig(lambda: path)
    assert len(rig.poll()) == 2
    first_id = rig.tailer.position.file_id
    path.write_bytes(b"second\n")  # truncates and rewrites the same inode
    assert rig.poll() == ["second"]
    assert rig.events[-1].start_offset == 0
    assert rig.tailer.position == LogPosition(rig.events[-1].file_id, 7)
    assert rig.tailer.position.file_id != first_id
    rig.close()


def test_truncation_regrown_past_the_offset_is_still_detected(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"short\n")
    rig = Rig(lambda: path)
    assert rig.poll() == ["short"]
    with path.open("r+b") as f:  # copytruncate, then the game wrote more than before
        f.truncate(0)
        f.write(b"a much longer first line\nand more\n")
    assert rig.poll() == ["a much longer first line", "and more"]
    assert rig.events[-1].start_offset == 0
    rig.close()


def test_same_first_bytes_after_truncation_still_get_a_new_id(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"banner\nrun\n")
    rig = Rig(lambda: path)
    rig.poll()
    ids = [rig.tailer.position.file_id]
    for _ in range(2):
        path.write_bytes(b"")
        assert rig.poll() == []
        path.write_bytes(b"banner\nrun\n")  # the very same bytes again
        assert rig.poll() == ["banner", "run"]
        ids.append(rig.tailer.position.file_id)
    assert len(set(ids)) == 3
    assert rig.tailer.position.offset == 11
    rig.close()


def test_rewrite_of_the_same_size_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"header\nrun 1\n")
    rig = Rig(lambda: path)
    rig.poll()
    path.write_bytes(b"header\nrun 2\n")
    os.utime(path, ns=(0, 123_456_789))  # a coarse clock could have kept the old mtime
    assert rig.poll() == ["header", "run 2"]
    rig.close()


def test_resume_from_a_saved_position_has_no_gap_and_no_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"1\n2\n3\n")
    first = Rig(lambda: path)
    assert first.poll() == ["1", "2", "3"]
    append(path, b"4\n5")
    assert first.poll() == ["4"]
    saved = first.tailer.position
    first.close()  # as after kill -9: the unfinished "5" was never published
    append(path, b"\n6\n")
    second = Rig(lambda: path, start=saved)
    assert second.tailer.position == saved
    assert second.poll() == ["5", "6"]
    assert second.events[0].start_offset == saved.offset
    assert second.events[0].file_id == saved.file_id
    second.close()


def test_resume_finishes_the_old_rpt_before_the_new_one(tmp_path: Path) -> None:
    old = tmp_path / rpt_name(1)
    old.write_bytes(b"a\nb\n")
    first = Rig(lambda: newest_file(tmp_path, RPT))
    assert first.poll() == ["a", "b"]
    saved = first.tailer.position
    first.close()
    append(old, b"c\n")  # written while the bot was down
    (tmp_path / rpt_name(2)).write_bytes(b"new\n")
    second = Rig(lambda: newest_file(tmp_path, RPT), start=saved)
    assert second.poll() == ["c", "new"]
    assert second.events[0].file_id == saved.file_id
    assert second.tailer.path == tmp_path / rpt_name(2)
    second.close()


def test_resume_when_the_saved_file_is_gone_starts_the_new_one_at_zero(tmp_path: Path) -> None:
    old = tmp_path / rpt_name(1)
    old.write_bytes(b"a\n")
    first = Rig(lambda: newest_file(tmp_path, RPT))
    first.poll()
    saved = first.tailer.position
    first.close()
    old.unlink()
    (tmp_path / rpt_name(2)).write_bytes(b"new 1\nnew 2\n")
    second = Rig(lambda: newest_file(tmp_path, RPT), start=saved)
    assert second.poll() == ["new 1", "new 2"]
    assert second.events[0].start_offset == 0
    second.close()


def test_resume_does_not_trust_a_reused_inode(tmp_path: Path) -> None:
    path = tmp_path / "latest.log"
    path.write_bytes(b"[10:00:00] [main/INFO]: this run\n")
    st = path.stat()
    stale = LogPosition(f"{st.st_dev}:{st.st_ino}:20:0badc0de", 20)  # same inode, other bytes
    rig = Rig(lambda: path, start=stale)
    assert rig.poll() == ["[10:00:00] [main/INFO]: this run"]
    assert rig.events[0].start_offset == 0
    rig.close()


def test_resume_with_a_malformed_or_empty_position_reads_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"x\n")
    for start in (LogPosition("garbage", 5), LogPosition("", 0)):
        rig = Rig(lambda: path, start=start)
        assert rig.poll() == ["x"]
        rig.close()


def test_minecraft_rotation_drains_the_renamed_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    latest = logs / "latest.log"
    latest.write_bytes(b"[10:00:00] [Server thread/INFO]: run 1\n")
    rig = Rig(lambda: latest)
    assert len(rig.poll()) == 1
    with latest.open("ab") as writer:  # the old server still holds its file open
        latest.rename(logs / "2024-05-01-1.log")
        writer.write(b"[10:00:01] [Server thread/WARN]: last words\n")
    latest.write_bytes(b"[11:00:00] [Server thread/INFO]: run 2\n")
    assert rig.poll() == [
        "[10:00:01] [Server thread/WARN]: last words",
        "[11:00:00] [Server thread/INFO]: run 2",
    ]
    assert rig.events[1].lines[0].level is LogLevel.WARNING
    rig.close()


def test_a_deleted_file_is_let_go_when_nothing_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    path.write_bytes(b"a\n")
    rig = Rig(lambda: path if path.exists() else None)
    rig.poll()
    append(path, b"b\nc")
    path.unlink()
    assert rig.poll() == ["b", "c"]  # drained, unfinished line flushed
    assert not any(str(path) in target and "(deleted)" in target for target in open_files())
    path.write_bytes(b"reborn\n")
    assert rig.poll() == ["reborn"]
    rig.close()


def test_a_huge_line_arrives_whole(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    huge = "x" * 700_000
    path.write_bytes(b"before\n" + huge.encode() + b"\nafter\n")
    rig = Rig(lambda: path)  # 256 KiB chunks
    assert rig.poll() == ["before", huge, "after"]
    check_contiguous(rig.events)
    rig.close()


def test_a_line_past_the_limit_comes_in_pieces_cut_between_characters(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    line = "\u0416" * 1500  # 3,000 bytes, 2 per character
    rig = Rig(lambda: path, chunk_size=256, max_line_bytes=1001)
    path.write_bytes(line.encode() + b"\nnext\n")
    pieces = rig.poll()
    assert "".join(pieces[:-1]) == line
    assert pieces[-1] == "next"
    assert all(len(piece.encode()) <= 1001 for piece in pieces)
    assert "\ufffd" not in "".join(pieces)
    check_contiguous(rig.events)
    rig.close()


def test_lines_go_to_the_ring_buffer(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    ring = RingBuffer(max_lines=3)
    rig = Rig(lambda: path, ring=ring)
    path.write_bytes(b"1\n2\n3\n4\nError in expression <x>\n")
    rig.poll()
    assert [line.text for line in ring.tail(10)] == ["3", "4", "Error in expression <x>"]
    assert ring.search("error")[0].source == "rpt"
    rig.close()


def test_position_at_end_and_newest_file(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    assert position_at_end(path) == LogPosition("", 0)
    path.write_bytes(b"old 1\nold 2\nunfinished")
    start = position_at_end(path)
    assert start.offset == 12
    append(path, b" now\nnew\n")
    rig = Rig(lambda: path, start=start)
    assert rig.poll() == ["unfinished now", "new"]
    rig.close()
    assert newest_file(tmp_path / "missing", RPT) is None
    for n in (3, 1, 2):
        (tmp_path / rpt_name(n)).write_bytes(b"")
    (tmp_path / "arma3server_x64_9999.mdmp").write_bytes(b"")
    assert newest_file(tmp_path, RPT) == tmp_path / rpt_name(3)


# --- any way of appending gives the same lines ---------------------------------------------

_PIECES = st.sampled_from(
    [b"a", b"bc", b"\n", b"\r\n", b"\xd0\x96", b"\xd0", b"\xff", b"Error ", b"WARN", b"x" * 70]
)


def read_all(path: Path, **options: object) -> list[tuple[str, LogLevel, int]]:
    rig = Rig(lambda: path, **options)
    rig.poll()
    rig.close()
    return [(line.text, line.level, line.end) for e in rig.events for line in e.lines]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(_PIECES, max_size=60).map(b"".join),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    st.booleans(),
)
def test_any_split_of_appends_yields_the_lines_of_one_read(
    data: bytes, cuts: list[int], restart: bool
) -> None:
    """Appending `data` in arbitrary pieces, polling between (and, with `restart`, replacing
    the tailer by a new one resumed from the saved position each time, as after kill -9)
    publishes exactly the complete lines that reading the finished file at once does."""
    options = {"chunk_size": 16, "max_line_bytes": 64}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "console.log"
        path.write_bytes(b"")
        rig = Rig(lambda: path, **options)
        got: list[tuple[str, LogLevel, int]] = []
        bounds = sorted({min(c, len(data)) for c in cuts} | {len(data)})
        done = 0
        for bound in bounds:
            append(path, data[done:bound])
            done = bound
            rig.poll()
            if restart:
                saved = rig.tailer.position
                got += [(ln.text, ln.level, ln.end) for e in rig.events for ln in e.lines]
                rig.close()
                rig = Rig(lambda: path, start=saved, **options)
        rig.poll()
        got += [(ln.text, ln.level, ln.end) for e in rig.events for ln in e.lines]
        check_contiguous(rig.events)
        rig.close()
        assert got == read_all(path, **options)
        whole = data[: data.rfind(b"\n") + 1]
        if all(len(raw) <= 64 for raw in data.split(b"\n")):  # no line was cut
            assert [text for text, _, _ in got] == [
                raw.decode("utf-8", "replace").rstrip("\r") for raw in whole.split(b"\n")[:-1]
            ]


# --- the watcher ---------------------------------------------------------------------------


async def test_flush_publishes_everything_on_disk(tmp_path: Path) -> None:
    bus = EventBus()
    sub = bus.subscribe(LogLines)
    watcher = LogWatcher()
    paths = [tmp_path / f"s{i}.log" for i in range(5)]
    for i, path in enumerate(paths):
        path.write_bytes(b"".join(b"line %d\n" % n for n in range(1000 * i)))
        watcher.add(LogTailer(i, f"s{i}", "console", lambda p=path: p, bus, chunk_size=4096))
    assert await watcher.flush(timeout=10) == 10_000
    assert sum(len(e.lines) for e in iter(sub.get_nowait, None)) == 10_000
    assert await watcher.flush(timeout=10) == 0
    for tailer in watcher.tailers:
        watcher.remove(tailer)
        tailer.close()
    assert watcher.tailers == ()


async def test_short_rounds_take_turns_and_still_read_everything(tmp_path: Path) -> None:
    bus = EventBus()
    sub = bus.subscribe(LogLines)
    watcher = LogWatcher(slice_bytes=1, round_seconds=0.0)  # one chunk of one log per round
    for i in range(3):
        path = tmp_path / f"s{i}.log"
        path.write_bytes(b"".join(b"server %d line %d\n" % (i, n) for n in range(500)))
        watcher.add(LogTailer(i, f"s{i}", "console", lambda p=path: p, bus, chunk_size=1024))
    assert await watcher.flush(timeout=10) == 1500
    order = [event.server_id for event in iter(sub.get_nowait, None)]
    assert order[:6] == [0, 1, 2, 0, 1, 2]  # turns, not one log drained before the next
    assert watcher.rounds > 3 * 500 * 16 // 1024
    for tailer in watcher.tailers:
        tailer.close()


async def test_running_watcher_delivers_new_lines_and_backs_off_when_idle(tmp_path: Path) -> None:
    bus = EventBus()
    sub = bus.subscribe(LogLines)
    path = tmp_path / "console.log"
    tailer = LogTailer(1, "alpha", "console", lambda: path, bus)
    watcher = LogWatcher(active_interval=0.01, idle_interval=0.2)
    watcher.add(tailer)
    watcher.start()
    try:
        await asyncio.sleep(0.5)  # nothing to read: the waits grow to 0.2 s
        rounds = watcher.rounds
        await asyncio.sleep(0.6)
        assert watcher.rounds - rounds <= 5
        path.write_bytes(b"Game started.\n")
        event = await sub.get(timeout=5)
        assert isinstance(event, LogLines)
        assert [line.text for line in event.lines] == ["Game started."]
        append(path, b"Roles assigned.\n")
        watcher.wake()
        event = await sub.get(timeout=5)
        assert isinstance(event, LogLines)
        assert event.lines[0].text == "Roles assigned."
    finally:
        await watcher.stop()
        tailer.close()
    assert not watcher.running


async def test_a_failing_tailer_is_logged_once_and_others_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> Path | None:
        raise PermissionError("no access to the profile folder")

    bus = EventBus()
    sub = bus.subscribe(LogLines)
    good = tmp_path / "good.log"
    good.write_bytes(b"fine\n")
    watcher = LogWatcher()
    bad_tailer = LogTailer(1, "bad", "rpt", broken, bus)
    watcher.add(bad_tailer)
    watcher.add(LogTailer(2, "good", "console", lambda: good, bus))
    with caplog.at_level(logging.WARNING, logger="core.logs.watcher"):
        for _ in range(3):
            await watcher.flush(timeout=5)
    assert [r.getMessage() for r in caplog.records].count("bad/rpt: cannot read log None") == 1
    event = sub.get_nowait()
    assert isinstance(event, LogLines) and event.server == "good"
    for tailer in watcher.tailers:
        tailer.close()


async def test_idle_logs_cost_almost_no_cpu(tmp_path: Path) -> None:
    bus = EventBus()
    watcher = LogWatcher()
    for i in range(50):
        folder = tmp_path / f"s{i}"
        (folder / "profile").mkdir(parents=True)
        (folder / "console.log").write_bytes(b"up\n")
        (folder / "profile" / rpt_name(1)).write_bytes(b"up\n")
        watcher.add(LogTailer(i, f"s{i}", "console", lambda f=folder: f / "console.log", bus))
        watcher.add(
            LogTailer(i, f"s{i}", "rpt", lambda f=folder: newest_file(f / "profile", RPT), bus)
        )
    await watcher.flush(timeout=10)
    watcher.start()
    try:
        await asyncio.sleep(1.5)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(1.5)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    finally:
        await watcher.stop()
        for tailer in watcher.tailers:
            tailer.close()
    assert share < 0.03, f"100 idle logs used {share:.1%} CPU"
