"""Turning bytes of complete lines into a `LineBatch`: levels per chunk, times on demand.

One set of rules serves every game, since the stamps do not collide:

* Arma 3 RPT: ` 7:52:09 text` (hour space-padded), `2021/10/05, 08:40:59 text`, or no stamp
  (the header block); errors are `Error in expression`, `Error ...`, `Exception code`,
  warnings `Warning Message: ...`.
* Minecraft: `[12:34:56] [Server thread/INFO]: text` or `[12:34:56 WARN]: text`; the level in
  the header wins over any word in the message (a player typing "ERROR" stays INFO).
* Anything else: ISO-8601 stamps (`2024-05-01T12:00:00Z`, `2024-05-01 12:00:00,123`) and the
  words ERROR/FATAL/SEVERE/CRITICAL/Exception, WARN/WARNING, DEBUG/TRACE.

The hot path (`parse_block`) runs no per-line Python on an ordinary line: it decodes and
splits a whole chunk in C, finds candidate level words with one regex pass over the chunk's
bytes, and classifies only the few lines that hold one, with `parse_level`, the per-line
rule (so the two cannot disagree; a property test checks it anyway).
"""

from __future__ import annotations

import logging
import re
import time
from bisect import bisect_right
from datetime import UTC, datetime, timedelta, timezone
from itertools import accumulate, repeat

from core.logs.lines import LineBatch, LineOrigin, LogLevel

__all__ = ["make_origin", "parse_block", "parse_level", "parse_piece", "parse_time"]

_log = logging.getLogger(__name__)

_INFO = LogLevel.INFO
_succ = (1).__add__

# --- levels -----------------------------------------------------------------------------

_WORDS = r"ERROR|Error|Exception|FATAL|SEVERE|CRITICAL|WARN|Warning|DEBUG|TRACE"
_CANDIDATE = re.compile(_WORDS)
"""Every level rule needs one of these words, so a line without one is INFO."""
_CANDIDATE_BYTES = re.compile(_WORDS.encode())

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
_WORD_LEVELS = {
    "ERROR": LogLevel.ERROR,
    "FATAL": LogLevel.ERROR,
    "SEVERE": LogLevel.ERROR,
    "CRITICAL": LogLevel.ERROR,
    "WARN": LogLevel.WARNING,
    "DEBUG": LogLevel.DEBUG,
    "TRACE": LogLevel.DEBUG,
}
_BODY_START = re.compile(r"(?:[ \d]\d:\d\d:\d\d |\d{4}/\d\d/\d\d, \d\d:\d\d:\d\d )?\s*")
"""What may precede an Arma `Error ...`/`Warning ...` that starts the message: a stamp, blanks."""


def _is_word(text: str, at: int) -> bool:
    """Whether text[at] exists and is a word character (the regex `\\w`)."""
    if 0 <= at < len(text):
        char = text[at]
        return char.isalnum() or char == "_"
    return False


def _word_level(text: str, match: re.Match[str]) -> LogLevel:
    """The level one candidate word gives its line (INFO when it is only part of a word)."""
    word = match.group()
    at, end = match.span()
    if word == "Exception":  # java.lang.NullPointerException, Arma "Exception code: ..."
        return LogLevel.ERROR
    if _is_word(text, at - 1):
        return _INFO
    if word == "Error" or word == "Warning":
        if word == "Error" and text.startswith(" in expression", end):
            return LogLevel.ERROR
        if word == "Warning" and text.startswith(" Message:", end):
            return LogLevel.WARNING
        if _is_word(text, end) or not _BODY_START.fullmatch(text, 0, at):
            return _INFO  # "Error"/"Warning" counts only as the first word of the message
        return LogLevel.ERROR if word == "Error" else LogLevel.WARNING
    if word == "WARN" and text.startswith("ING", end):
        end += 3
    return _INFO if _is_word(text, end) else _WORD_LEVELS[word]


def parse_level(text: str) -> LogLevel:
    """The level of one line; `parse_block` calls it only for lines holding a candidate word.

    A Minecraft header level wins; otherwise the gravest word: ERROR/FATAL/SEVERE/CRITICAL,
    anything with "Exception", "Error in expression", a message starting with "Error" are
    ERROR; WARN/WARNING, "Warning Message:", a message starting with "Warning" are WARNING;
    DEBUG/TRACE are DEBUG; the rest is INFO. Upper-case words must stand alone ("ERRORS" is not).
    """
    if text.startswith("["):
        header = _HEADER.match(text)
        if header is not None:
            stated = _HEADER_LEVELS.get(header.group(1) or header.group(2))
            if stated is not None:
                return stated
    level: LogLevel | None = None
    for match in _CANDIDATE.finditer(text):
        found = _word_level(text, match)
        if found is not _INFO and (level is None or found > level):
            level = found
            if level is LogLevel.ERROR:
                break
    return _INFO if level is None else level


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


def parse_block(data: bytes, start: int, origin: LineOrigin | None = None) -> LineBatch:
    """Lines of `data`, which must end with b"\\n"; `start` is the file offset of data[0].

    Bulk work only: one decode, one split, `accumulate` for the end offsets, one regex pass
    over the chunk for level candidates, `parse_level` for the few lines that hold one.
    Invalid UTF-8 becomes U+FFFD (never a newline, so the str and bytes splits agree line
    for line); trailing CRs are dropped.
    """
    text = data.decode("utf-8", "replace")
    texts = text.split("\n")
    texts.pop()  # the empty string after the final newline
    count = len(texts)
    if data.isascii():
        lengths = map(len, texts)
    else:
        raw = data.split(b"\n")
        raw.pop()
        lengths = map(len, raw)
    ends = list(accumulate(map(_succ, lengths), initial=start))
    del ends[0]
    if "\r" in text:
        texts = list(map(str.rstrip, texts, repeat("\r", count)))
    levels = [_INFO] * count
    classified = -1
    for match in _CANDIDATE_BYTES.finditer(data):  # bytes: positions compare with `ends`
        line = bisect_right(ends, start + match.start())
        if line != classified:
            classified = line
            levels[line] = parse_level(texts[line])
    return LineBatch(texts, levels, ends, origin)


def parse_piece(data: bytes, start: int, origin: LineOrigin | None = None) -> LineBatch:
    """One line with no newline: a partial line given up on, or a slice of an over-long line."""
    text = data.decode("utf-8", "replace").rstrip("\r")
    return LineBatch([text], [parse_level(text)], [start + len(data)], origin)
