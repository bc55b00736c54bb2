"""RingBuffer: the last N lines of a server, bounded in lines and bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.logs.lines import LineBatch, LogLevel, LogLine
from core.logs.parser import parse_block
from core.logs.ring import RingBuffer


def batch(*texts: str, start: int = 0) -> LineBatch:
    return parse_block("".join(t + "\n" for t in texts).encode(), start)


def texts(lines: list[LogLine]) -> list[str]:
    return [line.text for line in lines]


def test_tail_is_oldest_first_across_batches() -> None:
    ring = RingBuffer(max_lines=10)
    ring.extend(batch("a", "b"))
    ring.extend(batch("c"))
    ring.extend(batch("d", "e", "f"))
    assert texts(ring.tail(4)) == ["c", "d", "e", "f"]
    assert texts(ring.tail(100)) == ["a", "b", "c", "d", "e", "f"]
    assert ring.tail(0) == []
    assert len(ring) == 6


def test_keeps_exactly_the_last_max_lines() -> None:
    ring = RingBuffer(max_lines=5)
    for i in range(0, 30, 3):
        ring.extend(batch(str(i), str(i + 1), str(i + 2)))
    assert len(ring) == 5
    assert texts(ring.tail(10)) == ["25", "26", "27", "28", "29"]


def test_a_batch_larger_than_the_buffer_keeps_its_end() -> None:
    ring = RingBuffer(max_lines=3)
    ring.extend(batch(*map(str, range(10))))
    assert texts(ring.tail(5)) == ["7", "8", "9"]


def test_bytes_bound_evicts_old_batches_and_trims_a_huge_one() -> None:
    ring = RingBuffer(max_lines=1000, max_bytes=1000)
    for _ in range(20):
        ring.extend(batch("x" * 99))  # 100 bytes each
    assert ring.approx_bytes <= 1000
    assert len(ring) == 10
    ring.extend(batch(*(["y" * 499] * 10)))  # one 5,000-byte batch
    assert ring.approx_bytes <= 1000
    assert texts(ring.tail(100)) == ["y" * 499] * 2


def test_search_is_case_insensitive_and_newest_first() -> None:
    ring = RingBuffer()
    ring.extend(batch("Player Fritz connected", "Error in expression <x>"))
    ring.extend(batch("player fritz disconnected", "Game started."))
    found = ring.search("FRITZ", limit=10)
    assert texts(found) == ["player fritz disconnected", "Player Fritz connected"]
    assert texts(ring.search("fritz", limit=1)) == ["player fritz disconnected"]
    assert ring.search("nobody") == []
    assert ring.search("x", limit=0) == []
    assert ring.search("error")[0].level is LogLevel.ERROR


def test_search_finds_unicode_case_insensitively() -> None:
    ring = RingBuffer()
    name = "\u00d8deg\u00e5rd"  # Odegard with a slashed O
    ring.extend(batch(f"Player {name} connected"))
    assert len(ring.search(name.upper())) == 1


def test_append_and_extend_with_plain_lines() -> None:
    ring = RingBuffer(max_lines=2)
    ring.append(LogLine("one"))
    ring.extend([LogLine("two", LogLevel.WARNING, 8), LogLine("three")])
    ring.extend([])
    assert texts(ring.tail(5)) == ["two", "three"]
    assert ring.tail(5)[0].level is LogLevel.WARNING
    ring.clear()
    assert len(ring) == 0 and ring.tail(3) == []


def test_rejects_silly_bounds() -> None:
    with pytest.raises(ValueError):
        RingBuffer(max_lines=0)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=1, max_value=40),
    st.lists(st.integers(min_value=0, max_value=25), max_size=30),
)
def test_tail_equals_the_end_of_everything_appended(max_lines: int, sizes: list[int]) -> None:
    ring = RingBuffer(max_lines=max_lines)
    everything: list[str] = []
    for size in sizes:
        new = [str(len(everything) + i) for i in range(size)]
        everything += new
        ring.extend(batch(*new))
        assert len(ring) == min(len(everything), max_lines)
    assert texts(ring.tail(max_lines)) == everything[-max_lines:]
