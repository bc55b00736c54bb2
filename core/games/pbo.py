"""A strict reader of Arma PBO archives, to validate an upload before it reaches a server.

A PBO is a header (a "sreV" product entry with key/value properties, one entry per file,
a terminator), the file data in header order, then a 0x00 byte and the SHA-1 of everything
before that byte (as HEMTT writes it). Anything else (a renamed text file, a truncated
download, a hand-made archive whose names climb out of the mission folder) is refused with
a `PboError` whose reason a Discord user can act on. The data is hashed in chunks, never
loaded whole. Mission file names (`missionName.terrainName.pbo`) are checked in
`core.games.mission_names`.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from core.errors import InvalidInput

__all__ = [
    "COMPRESSED_METHOD",
    "PRODUCT_METHOD",
    "STORED_METHOD",
    "PboEntry",
    "PboError",
    "PboSummary",
    "read_pbo",
    "read_pbo_bytes",
    "read_pbo_stream",
]

PRODUCT_METHOD = 0x56657273  # bytes "sreV"
COMPRESSED_METHOD = 0x43707273  # bytes "srpC"
STORED_METHOD = 0
_FILE_METHODS = frozenset({STORED_METHOD, COMPRESSED_METHOD})

MAX_ENTRIES = 65_536
MAX_NAME_BYTES = 512
MAX_PROPERTIES = 64
MAX_PROPERTY_BYTES = 1024
MAX_HEADER_BYTES = 32 * 1024 * 1024
TRAILER_SIZE = 21  # 0x00 + SHA-1
_FIELDS = struct.Struct("<5I")
_READ_CHUNK = 64 * 1024
_HASH_CHUNK = 1024 * 1024


class PboError(InvalidInput):
    """The file is not a valid PBO; the message says why."""


_Part = Literal["first entry", "property name", "property value", "file name"]
"""A NUL-terminated string of the header, named in the refusal when it is bad."""


@dataclass(frozen=True, slots=True)
class PboEntry:
    name: str
    method: int
    original_size: int
    timestamp: int
    data_size: int


@dataclass(frozen=True, slots=True)
class PboSummary:
    """What a valid PBO holds, for the upload's reply and the duplicate check."""

    entries: tuple[PboEntry, ...]
    properties: tuple[tuple[str, str], ...]
    size: int
    """The whole file, in bytes."""
    data_size: int
    """The file data the header announces, in bytes."""
    sha1: str
    sha256: str
    """Of the whole file: the identity used to spot the same mission under another name."""

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.entries)

    @property
    def prefix(self) -> str | None:
        for key, value in self.properties:
            if key.lower() == "prefix":
                return value
        return None

    @property
    def has_mission_sqm(self) -> bool:
        return any(entry.name.lower() == "mission.sqm" for entry in self.entries)


def read_pbo(path: Path) -> PboSummary:
    """Validate the PBO at `path` (blocking: run it in a thread for big files)."""
    try:
        with path.open("rb") as stream:
            return read_pbo_stream(stream, os.fstat(stream.fileno()).st_size)
    except OSError as exc:
        raise PboError(
            "the file could not be read ({reason})", reason=exc.strerror or "I/O error"
        ) from exc


def read_pbo_bytes(data: bytes) -> PboSummary:
    """Validate a PBO held in memory."""
    return read_pbo_stream(io.BytesIO(data), len(data))


def read_pbo_stream(stream: BinaryIO, size: int) -> PboSummary:
    """Validate `size` bytes of `stream` from its start: header, layout, then the checksum."""
    if size < TRAILER_SIZE + 2 * (1 + _FIELDS.size):
        raise PboError("this is not a PBO: {size} bytes is too small to be one", size=size)
    stream.seek(0)
    reader = _HeaderReader(stream, min(size - TRAILER_SIZE, MAX_HEADER_BYTES))
    properties = _read_product_entry(reader)
    entries = _read_file_entries(reader, size)
    header_end = reader.consumed
    data_size = sum(entry.data_size for entry in entries)
    expected = header_end + data_size + TRAILER_SIZE
    if size < expected:
        raise PboError(
            "the PBO is truncated: its header announces {expected} bytes, the file "
            "has only {size} (an interrupted download?)",
            expected=expected,
            size=size,
        )
    if size > expected:
        raise PboError(
            "the PBO has {extra} unexpected bytes after its checksum; it is damaged or not a PBO",
            extra=size - expected,
        )
    sha1, sha256 = _check_trailer(stream, size)
    return PboSummary(
        entries=entries,
        properties=properties,
        size=size,
        data_size=data_size,
        sha1=sha1,
        sha256=sha256,
    )


class _HeaderReader:
    """Buffered reads of NUL-terminated names and fixed fields, never past `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._buf = b""
        self._pos = 0
        self.consumed = 0

    def _fill(self) -> None:
        read_so_far = self.consumed + len(self._buf) - self._pos
        if read_so_far >= self._limit:
            raise PboError(
                "this is not a valid PBO: its header does not end within {limit} bytes "
                "(truncated, or far too many files)",
                limit=self._limit,
            )
        chunk = self._stream.read(min(_READ_CHUNK, self._limit - read_so_far))
        if not chunk:
            raise PboError("the PBO is truncated: the file ends inside its header")
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0

    def cstring(self, max_len: int, what: _Part) -> bytes:
        while True:
            end = self._buf.find(b"\0", self._pos, self._pos + max_len + 1)
            if end >= 0:
                value = self._buf[self._pos : end]
                self._advance(end + 1)
                return value
            if len(self._buf) - self._pos > max_len:
                raise _too_long(what, max_len)
            self._fill()

    def fields(self) -> tuple[int, int, int, int, int]:
        while len(self._buf) - self._pos < _FIELDS.size:
            self._fill()
        values: tuple[int, int, int, int, int] = _FIELDS.unpack_from(self._buf, self._pos)
        self._advance(self._pos + _FIELDS.size)
        return values

    def _advance(self, new_pos: int) -> None:
        self.consumed += new_pos - self._pos
        self._pos = new_pos


def _read_product_entry(reader: _HeaderReader) -> tuple[tuple[str, str], ...]:
    not_a_pbo = PboError(
        "this is not a PBO (or an old one without the Arma 3 header): "
        'it does not start with the "sreV" product entry'
    )
    try:
        reader.cstring(0, "first entry")  # the product entry has an empty name
    except PboError:
        raise not_a_pbo from None
    method, original, _reserved, _timestamp, data_size = reader.fields()
    if method != PRODUCT_METHOD:
        raise not_a_pbo
    if original or data_size:
        raise PboError("this is not a valid PBO: its product entry announces data")
    properties: list[tuple[str, str]] = []
    while True:
        key = reader.cstring(MAX_PROPERTY_BYTES, "property name")
        if not key:
            return tuple(properties)
        value = reader.cstring(MAX_PROPERTY_BYTES, "property value")
        if len(properties) >= MAX_PROPERTIES:
            raise PboError(
                "this is not a valid PBO: more than {MAX_PROPERTIES} properties",
                MAX_PROPERTIES=MAX_PROPERTIES,
            )
        properties.append((_text(key, "property name"), _text(value, "property value")))


def _read_file_entries(reader: _HeaderReader, size: int) -> tuple[PboEntry, ...]:
    entries: list[PboEntry] = []
    seen: set[str] = set()
    announced = 0
    while True:
        raw = reader.cstring(MAX_NAME_BYTES, "file name")
        method, original, _reserved, timestamp, data_size = reader.fields()
        if not raw:
            if method or original or data_size:
                raise PboError("this is not a valid PBO: its header terminator is not empty")
            return tuple(entries)
        if len(entries) >= MAX_ENTRIES:
            raise PboError(
                "this is not a valid PBO: more than {MAX_ENTRIES} files", MAX_ENTRIES=MAX_ENTRIES
            )
        name = _check_name(raw)
        if method not in _FILE_METHODS:
            raise PboError(
                "this is not a valid PBO: {show} has an unknown packing method 0x{method:08x}",
                show=_show(name),
                method=method,
            )
        folded = name.replace("/", "\\").casefold()
        if folded in seen:
            raise PboError("this is not a valid PBO: {show} appears twice", show=_show(name))
        seen.add(folded)
        announced += data_size
        if announced > size:
            raise PboError(
                "this is not a valid PBO: {show} claims {data_size} bytes, more than the "
                "whole file ({size} bytes)",
                show=_show(name),
                data_size=data_size,
                size=size,
            )
        entries.append(PboEntry(name, method, original, timestamp, data_size))


def _text(raw: bytes, what: _Part) -> str:
    """Names are usually ASCII; UTF-8 is accepted, anything else read as Latin-1."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        raise _control_characters(what)
    return text


def _too_long(what: _Part, max_len: int) -> PboError:
    if what == "first entry":
        return PboError(
            "this is not a PBO: the first entry name is longer than {max_len} bytes",
            max_len=max_len,
        )
    if what == "property name":
        return PboError(
            "this is not a PBO: a header property name is longer than {max_len} bytes",
            max_len=max_len,
        )
    if what == "property value":
        return PboError(
            "this is not a PBO: a header property value is longer than {max_len} bytes",
            max_len=max_len,
        )
    return PboError(
        "this is not a PBO: a file name in the archive is longer than {max_len} bytes",
        max_len=max_len,
    )


def _control_characters(what: _Part) -> PboError:
    if what == "property name":
        return PboError("this is not a valid PBO: a property name contains control characters")
    if what == "property value":
        return PboError("this is not a valid PBO: a property value contains control characters")
    return PboError(
        "this is not a valid PBO: a file name in the archive contains control characters"
    )


def _check_name(raw: bytes) -> str:
    """A relative path inside the mission: no root, drive, `.`/`..` or empty component."""
    name = _text(raw, "file name")
    parts = name.replace("/", "\\").split("\\")
    if name.startswith(("\\", "/")) or ":" in name:
        raise PboError("refused: the archive holds an absolute path {show}", show=_show(name))
    if any(part in ("", ".", "..") for part in parts):
        raise PboError(
            "refused: the archive holds a path that leaves its folder {show}", show=_show(name)
        )
    return name


def _show(name: str) -> str:
    """A hostile name, quoted and cut short for a message."""
    return repr(name if len(name) <= 60 else name[:60] + "…")


def _check_trailer(stream: BinaryIO, size: int) -> tuple[str, str]:
    """Hash everything before the trailer in chunks and compare it with the trailer."""
    stream.seek(0)
    sha1 = hashlib.sha1(usedforsecurity=False)
    sha256 = hashlib.sha256()
    remaining = size - TRAILER_SIZE
    while remaining:
        chunk = stream.read(min(_HASH_CHUNK, remaining))
        if not chunk:
            raise PboError("the PBO is truncated: the file shrank while it was read")
        sha1.update(chunk)
        sha256.update(chunk)
        remaining -= len(chunk)
    trailer = stream.read(TRAILER_SIZE)
    if len(trailer) != TRAILER_SIZE or stream.read(1):
        raise PboError("the PBO changed while it was read; upload it again")
    sha256.update(trailer)
    if trailer[0] != 0:
        raise PboError("this is not a valid PBO: its checksum trailer is missing")
    if trailer[1:] != sha1.digest():
        raise PboError(
            "the PBO's SHA-1 checksum does not match its content: the file is damaged "
            "(an interrupted download?)"
        )
    return sha1.hexdigest(), sha256.hexdigest()
