"""Reading a log's history backwards from disk: rotated copies and the live file as one
stream, bounded chunks, the unfinished last line left out."""

from __future__ import annotations

from pathlib import Path

from core.logs.history import Segment, read_backwards, search, tail


def test_tail_and_search_read_across_rotated_copies(tmp_path: Path) -> None:
    older, newer, live = tmp_path / "c.log.2", tmp_path / "c.log.1", tmp_path / "c.log"
    older.write_bytes(b"one\ntwo\nthr")  # a rotation cut "three" in two
    newer.write_bytes(b"ee\nfour\r\n")
    live.write_bytes(b"\0" * 8 + b"five\nsix\nunfinished")  # 8 punched bytes
    chain = [Segment(older), Segment(newer), Segment(live, 8)]
    assert tail(chain, 3) == ["four", "five", "six"]
    assert tail(chain, 100) == ["one", "two", "three", "four", "five", "six"]
    assert search(chain, "E", 2, max_scan=1 << 20) == (["three", "five"], True)
    assert search(chain, "T", 10, max_scan=1 << 20) == (["two", "three"], True)
    assert search(chain, "nothing", 5, max_scan=1 << 20) == ([], True)
    assert tail([Segment(tmp_path / "missing"), Segment(live, 8)], 1) == ["six"]


def test_reading_is_bounded_in_chunks_and_in_scan(tmp_path: Path) -> None:
    live = tmp_path / "c.log"
    live.write_bytes(b"".join(b"line %05d\n" % n for n in range(10000)))  # 110 KB
    blocks = list(read_backwards([Segment(live)], chunk=4096))
    assert all(len(block) <= 4096 // 11 + 1 for block in blocks)
    assert [line for block in reversed(blocks) for line in block][:2] == [
        b"line 00000",
        b"line 00001",
    ]
    found, complete = search([Segment(live)], "line 0", 5, max_scan=33_000)
    assert found == [f"line {n:05d}" for n in range(9995, 10000)] and complete
    found, complete = search([Segment(live)], "line 00", 5, max_scan=33_000)
    assert found == [] and not complete, "only the newest 33 KB were read"
