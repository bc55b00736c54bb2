"""Turning bytes of complete lines into `LogLine`s: levels per chunk, times per line on demand.

One set of rules serves every game, since the stamps do not collide:

* Arma 3 RPT: ` 7:52:09 text` (hour space-padded), `2021/10/05, 08:40:59 text`, or no stamp
  (the header block); errors are `Error in expression`, `Error ...`, `Exception code`,
  warnings `Warning Message: ...`.
* Minecraft: `[12:34:56] [Server thread/INFO]: text` or `[12:34:56 WARN]: text`; the level in
  the header wins over any word in the message (a player typing "ERROR" stays INFO).
* Anything else: ISO-8601 stamps (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00,123`) and the
  words ERROR/FATAL/SEVERE/CRITICAL/Exception, WARN/WARNING, DEBUG/TRACE.

The hot path (`parse_block`) never runs a per-line regex on an ordinary line: it decodes and
splits a whole chunk in C, finds candidate level words with one regex pass over the chunk,
and classifies only the few lines that contain one. `parse_level` is the per-line rule it
must agree with (a property test holds them to it).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from itertools import accumulate, repeat

from core.logs.lines import LineOrigin, LogLevel, LogLine

__all__ = ["make_origin", "parse_block", "parse_level", "parse_piece", "parse_time"]

_log = logging.getLogger(__name__)

_INFO = LogLevel.INFO
_succ = (1).__add__

# --- levels -----------------------------------------------------------------------------

_CANDIDATE = re.compile(r"ERROR|Error|Exception|FATAL|SEVERE|CRITICAL|WARN|Warning|DEBUG|TRACE")
"""Every level rule below needs one of these words, so a line without one is INFO."""

_STAMP = r"(?:[ \d]\d:\d\d:\d\d |\d{4}/\d\d/\d\d, \d\d:\d\d:\d\d )?\s*"
_HEADER = re.compile(r"\[[^\]\n]*\] \[[^\]\n]*/([A-Z]+)\]|\[\d\d:\d\d:\d\d ([A-Z]+)\]")
_HEADER_LEVELS = {
    "TRACE": LogLevel.DEBUG,
    "DEBUG": LogLevel.DEBUG,
    "INFO": LogLevel.INFO,
    "WARN": LogLevel.WARNING,
    "WARNING": LogLevel.WARNING,
    "ERROR": LogLevel.ERROR,
    "SEVERE": LogLevel.ERROR,
    "FATAL": LogLevel.ERROR,
}
_ERROR = re.compile(
    r"\b(?:ERROR|FATAL|SEVERE|CRITICAL)\b|Exception|\bError in expression\b|^" + _STAMP + r"Error\b"
)
_WARNING = re.compile(r"\bWARN(?:ING)?\b|\bWarning Message:|^" + _STAMP + r"Warning\b")
_DEBUG = re.compile(r"\b(?:DEBUG|TRACE)\b")


def parse_level(text: str) -> LogLevel:
    """The level of one line: the slow per-line rule `parse_block` applies to candidates only."""
    header = _HEADER.match(text)
    if header is not None:
        level = _HEADER_LEVELS.get(header.group(1) or header.group(2))
        if level is not None:
            return level
    if _ERROR.search(text):
        return LogLevel.ERROR
    if _WARNING.search(text):
        return LogLevel.WARNING
    if _DEBUG.search(text):
        return LogLevel.DEBUG
    return _INFO


# --- times ------------------------------------------------------------------------------

_ISO = re.compile(
    r"\[?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)"
    r"(?:[.,](\d{1,6})\d*)?(?: ?(Z|[+-]\d\d:?\d\d))?"
)
_ARMA_FULL = re.compile(r"(\d{4})/(\d\d)/(\d\d), (\d\d):(\d\d):(\d\d) ")
_CLOCK = re.compile(r"\[?([ \d]?\d):(\d\d):(\d\d)(?:[.,](\d{1,6})\d*)?[\] ]")
_SKEW = timedelta(seconds=60)
"""How far a time-only stamp may lie past the reference before it is taken as yesterday's."""


def _micros(fraction: str | None) -> int:
    return int(fraction.ljust(6, "0")) if fraction else 0


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def parse_time(text: str, reference: float | None = None) -> datetime | None:
    """The stamp at the start of `text` as an aware datetime, or None.

    Stamps without a zone are local time (the game runs on this host). Time-only stamps (Arma
    short, Minecraft) take the latest date that puts them at or before `reference` (unix time,
    default now): right for any line less than a day older than the reference, which the
    tailer sets to the file's mtime after reading the line.
    """
    try:
        match = _ISO.match(text)
        if match is not None:
            y, mo, d, h, mi, s, frac, zone = match.groups()
            tz = _zone(zone) if zone else None
            stamp = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), _micros(frac), tz)
            return stamp if tz is not None else stamp.astimezone()
        match = _ARMA_FULL.match(text)
        if match is not None:
            y, mo, d, h, mi, s = map(int, match.groups())
            return datetime(y, mo, d, h, mi, s).astimezone()
        match = _CLOCK.match(text)
        if match is None:
            return None
        h, mi, s, frac = match.groups()
        ref = datetime.fromtimestamp(time.time() if reference is None else reference)
        stamp = ref.replace(hour=int(h), minute=int(mi), second=int(s), microsecond=_micros(frac))
        if stamp > ref + _SKEW:
            stamp -= timedelta(days=1)
        return stamp.astimezone()
    except (ValueError, OverflowError):
        _log.debug("not a valid stamp: %.40r", text)
        return None


def make_origin(source: str, file_id: str, reference: float | None) -> LineOrigin:
    """The shared origin of one batch, dating its lines with `parse_time`."""
    return LineOrigin(source, file_id, reference, parse_time)


# --- blocks -----------------------------------------------------------------------------


def parse_block(data: bytes, start: int, origin: LineOrigin | None = None) -> list[LogLine]:
    """Lines of `data`, which must end with b"\\n"; `start` is the file offset of data[0].

    Bulk work only: one decode, one split, `accumulate` for the end offsets, one regex pass
    for level candidates. Invalid UTF-8 becomes U+FFFD (never a newline, so the str and bytes
    splits agree line for line); one trailing CR per line is dropped.
    """
    text = data.decode("utf-8", "replace")
    parts = text.split("\n")
    parts.pop()  # the empty string after the final newline
    count = len(parts)
    if data.isascii():
        lengths = map(len, parts)
    else:
        raw = data.split(b"\n")
        raw.pop()
        lengths = map(len, raw)
    ends = accumulate(map(_succ, lengths), initial=start)
    next(ends)
    if "\r" in text:
        parts = list(map(str.rstrip, parts, repeat("\r", count)))
    levels = [_INFO] * count
    line = 0
    scanned = 0
    classified = -1
    for match in _CANDIDATE.finditer(text):
        at = match.start()
        line += text.count("\n", scanned, at)
        scanned = at
        if line != classified:
            classified = line
            levels[line] = parse_level(parts[line])
    return list(map(LogLine, parts, levels, ends, repeat(origin, count)))


def parse_piece(data: bytes, start: int, origin: LineOrigin | None = None) -> LogLine:
    """One line with no newline: a partial line given up on, or a slice of an over-long line."""
    text = data.decode("utf-8", "replace").rstrip("\r")
    return LogLine(text, parse_level(text), start + len(data), origin)
