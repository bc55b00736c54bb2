"""Times, levels and the chunk fast path of core.logs.parser, and the line values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import LogLines
from core.logs.lines import LineBatch, LogLevel, LogLine
from core.logs.parser import make_origin, parse_block, parse_level, parse_piece, parse_time

E, W, N, D = LogLevel.ERROR, LogLevel.WARNING, LogLevel.INFO, LogLevel.DEBUG
MAXIM = "\u041c\u0430\u043a\u0441\u0438\u043c"  # a Cyrillic player name, 12 bytes in UTF-8
OSHIBKA = "\u041e\u0448\u0438\u0431\u043a\u0430"  # Cyrillic for "error"


def local(*args: int) -> datetime:
    return datetime(*args).astimezone()  # type: ignore[arg-type]


def ts(*args: int) -> float:
    return datetime(*args).timestamp()  # type: ignore[arg-type]


# --- times ------------------------------------------------------------------------------


def test_arma_short_stamp_is_space_padded_and_dated_by_the_reference() -> None:
    ref = ts(2021, 11, 5, 17, 40, 0)
    assert parse_time(" 7:52:09 Dedicated host created.", ref) == local(2021, 11, 5, 7, 52, 9)
    assert parse_time("17:37:16 Game started.", ref) == local(2021, 11, 5, 17, 37, 16)


def test_time_only_stamp_after_the_reference_is_yesterday() -> None:
    ref = ts(2021, 11, 6, 0, 0, 5)  # read just after midnight
    assert parse_time("23:59:58 Roles assigned.", ref) == local(2021, 11, 5, 23, 59, 58)
    assert parse_time(" 0:00:04 Game started.", ref) == local(2021, 11, 6, 0, 0, 4)


def test_arma_full_stamp() -> None:
    assert parse_time("2021/10/05, 08:40:59 Mission read.", None) == local(2021, 10, 5, 8, 40, 59)


@pytest.mark.parametrize(
    "line",
    [
        "=====================================================================",
        "== C:\\arma\\arma3server_x64.exe",
        '== "C:\\arma\\arma3server_x64.exe" -port=2312 -profiles=p "-name=x"',
        "",
        "Original output filename: Arma3Retail_Server_x64",
        "Exe timestamp: 2021/09/30 12:39:26",
        "Current time:  2021/11/05 17:37:16",
        "Version: 2.06.148221",
        "Player Fritz connected (id=76561198117145527).",
        "25:61:00 not a time",
        "2024-13-45T00:00:00 not a date",
    ],
)
def test_untimestamped_lines_have_no_time(line: str) -> None:
    assert parse_time(line, ts(2021, 11, 5, 18, 0, 0)) is None


def test_minecraft_stamps() -> None:
    ref = ts(2024, 5, 1, 13, 0, 0)
    assert parse_time("[12:34:56] [Server thread/INFO]: Done (3.2s)!", ref) == local(
        2024, 5, 1, 12, 34, 56
    )
    assert parse_time("[12:34:56 WARN]: Can't keep up!", ref) == local(2024, 5, 1, 12, 34, 56)


def test_iso_stamps_keep_their_zone_or_are_local() -> None:
    assert parse_time("2024-05-01T12:00:00Z boot", None) == datetime(2024, 5, 1, 12, tzinfo=UTC)
    plus2 = timezone(timedelta(hours=2))
    assert parse_time("2024-05-01T12:00:00.5+02:00 x", None) == datetime(
        2024, 5, 1, 12, 0, 0, 500000, tzinfo=plus2
    )
    assert parse_time("2024-05-01 12:00:00,123 ERROR x", None) == local(
        2024, 5, 1, 12, 0, 0, 123000
    )
    assert parse_time("[2024-05-01 12:00:00] x", None) == local(2024, 5, 1, 12, 0, 0)


def test_every_time_is_aware() -> None:
    for line in (" 7:52:09 a", "2021/10/05, 08:40:59 a", "[01:02:03] [x/INFO]: a", "2024-05-01 1"):
        stamp = parse_time(line, None)
        assert stamp is None or stamp.tzinfo is not None


# --- levels -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "level"),
    [
        (" 7:52:09 Error in expression <_unit setPos>", E),
        (" 7:52:09   Error position: <setPos (getMarkerPos", E),
        (" 7:52:09   Error Undefined variable in expression: _unit", E),
        ("2021/10/05, 08:40:59 Error: no mission", E),
        ("Exception code: C0000005 ACCESS_VIOLATION at F0AB12C3", E),
        ("java.lang.NullPointerException: boom", E),
        ("\tat net.minecraft.server.Main(Main.java:1) ~ Exception", E),
        ("2024-05-01 12:00:00,123 ERROR [db] lost connection", E),
        ("FATAL: out of memory", E),
        ("[SEVERE] plugin failed", E),
        ("CRITICAL disk full", E),
        (" 7:52:09 Warning Message: No entry 'bin\\config.bin/CfgWeapons.'", W),
        (" 7:52:09 Warning: Convex component representing x", W),
        ("WARNING: Function 'BIS_fnc_x' - y", W),
        ("2024-05-01 12:00:00 WARN slow tick", W),
        ("DEBUG cache warmed", D),
        ("TRACE entering loop", D),
        ("[12:34:56] [Server thread/WARN]: Can't keep up!", W),
        ("[12:34:56] [Server thread/ERROR]: Encountered an unexpected exception", E),
        ("[12:34:56] [main/FATAL]: crash", E),
        ("[12:34:56] [Worker-Main-1/DEBUG]: x", D),
        ("[12:34:56 WARN]: Can't keep up!", W),
        ("[12:34:56 INFO]: Done", N),
        # the header level wins over words in the message
        ("[12:34:56] [Server thread/INFO]: <Steve> ERROR Exception lol", N),
        # words that only look like levels
        ("ERRORS were counted: 0", N),
        ("The WARNINGS list is empty", N),
        (" 7:52:09 Player Errorist connected.", N),
        (" 7:52:09 BattlEye Server: (Global) Fritz: Error everywhere", N),
        (" 7:52:09 Player Fritz: my Warning was ignored", N),
        ("debugging is fun, an error is not", N),
        ("", N),
        (" 7:52:09 Dedicated host created.", N),
    ],
)
def test_levels(line: str, level: LogLevel) -> None:
    assert parse_level(line) is level
    assert parse_block(line.encode() + b"\n", 0).levels == [level]


def test_levels_are_ordered() -> None:
    assert LogLevel.DEBUG < LogLevel.INFO < LogLevel.WARNING < LogLevel.ERROR


# --- blocks -----------------------------------------------------------------------------


def test_block_ends_are_byte_offsets_past_each_newline() -> None:
    data = f"a\n{MAXIM}\n\nok\n".encode()
    batch = parse_block(data, 100)
    assert batch.texts == ["a", MAXIM, "", "ok"]
    assert batch.ends == [102, 102 + 13, 116, 119]
    assert batch.ends[-1] == 100 + len(data)


def test_block_drops_cr_and_replaces_invalid_utf8() -> None:
    batch = parse_block(b"one\r\ntwo \xff\xfe end\r\n\xd0\n", 0)
    assert batch.texts == ["one", "two \ufffd\ufffd end", "\ufffd"]
    assert batch.ends == [5, 17, 19]


def test_piece_is_one_unterminated_line() -> None:
    batch = parse_piece(f"half a line {OSHIBKA}".encode(), 10)
    assert batch.texts == [f"half a line {OSHIBKA}"]
    assert batch.ends == [10 + len(f"half a line {OSHIBKA}".encode())]


def test_batch_makes_lines_on_demand() -> None:
    origin = make_origin("rpt", "1:2:3:4", ts(2021, 11, 5, 18, 0, 0))
    batch = parse_block(b" 7:52:09 Game started.\nWarning Message: x\n", 0, origin)
    first = batch[0]
    assert isinstance(first, LogLine)
    assert (first.text, first.level, first.end) == (" 7:52:09 Game started.", N, 23)
    assert first.source == "rpt"
    assert first.time == local(2021, 11, 5, 7, 52, 9)
    assert first.time is first.time  # parsed once, then cached
    assert batch[1].time is None
    assert [line.level for line in batch] == [N, W]
    assert [line.text for line in reversed(batch)] == [
        "Warning Message: x",
        " 7:52:09 Game started.",
    ]
    assert batch[1:] == [LogLine("Warning Message: x", W, 42)]
    assert isinstance(batch[1:], LineBatch)
    assert batch == LineBatch.of(list(batch))
    assert batch != "not lines"


def test_hand_made_line_has_no_time_and_no_source() -> None:
    line = LogLine("2024-05-01T12:00:00Z boot")
    assert (line.level, line.end, line.time, line.source) == (N, 0, None, "")
    assert repr(line) == "LogLine('2024-05-01T12:00:00Z boot', INFO, end=0)"


def test_log_lines_after_cursor_works_on_batches() -> None:
    batch = parse_block(b"a\nb\nc\n", 10)
    event = LogLines(
        server_id=1,
        server="s",
        source="rpt",
        file_id="f",
        lines=batch,
        start_offset=10,
        end_offset=16,
    )
    assert [line.text for line in event.after(12)] == ["b", "c"]
    assert event.after(9) is batch
    assert list(event.after(16)) == []


_WORDS = st.sampled_from(
    [
        "ERROR", "Error", "Exception", "FATAL", "SEVERE", "CRITICAL", "WARN", "WARNING",
        "Warning", "Message:", "DEBUG", "TRACE", "in", "expression", "x", "_", MAXIM,
        " 7:52:09", "[12:34:56]", "[Server thread/INFO]:", "[main/WARN]:", "[12:34:56 ERROR]:",
        "2021/10/05, 08:40:59", " ", "  ", "\r", "\t", ":", "ERRORS", "Errorist",
    ]
)  # fmt: skip
_LINES = st.lists(st.lists(_WORDS, max_size=8).map("".join), max_size=30)


@settings(max_examples=300, deadline=None)
@given(_LINES)
def test_chunk_levels_agree_with_the_per_line_rule(lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    batch = parse_block(data, 0)
    assert batch.texts == [line.rstrip("\r") for line in lines]
    assert batch.levels == [parse_level(text) for text in batch.texts]
    assert batch.ends[-1:] == ([len(data)] if lines else [])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20))
def test_any_bytes_split_like_the_naive_way(raw_lines: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in raw_lines)
    batch = parse_block(data, 7)
    assert batch.texts == [line.decode("utf-8", "replace").rstrip("\r") for line in raw_lines]
    ends, offset = [], 7
    for line in raw_lines:
        offset += len(line) + 1
        ends.append(offset)
    assert batch.ends == ends
    assert batch.levels == [parse_level(text) for text in batch.texts]
