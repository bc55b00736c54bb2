"""Build PBO archives for tests: valid missions, and every way of getting one wrong.

`build_pbo` writes the layout byte by byte (header entries, terminator, data, 0x00 +
SHA-1 trailer) with knobs to break each part; `mission_pbo` is a small valid mission.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PboFile", "build_pbo", "mission_pbo", "padded_mission_pbo"]

PRODUCT_METHOD = 0x56657273
COMPRESSED_METHOD = 0x43707273


@dataclass(frozen=True)
class PboFile:
    """One file entry; `name` as raw bytes allows hostile names; sizes may lie."""

    name: str | bytes
    data: bytes
    method: int = 0
    original_size: int | None = None
    data_size: int | None = None
    timestamp: int = 1_700_000_000


def _entry(name: bytes, method: int, original: int, timestamp: int, size: int) -> bytes:
    return name + b"\0" + struct.pack("<5I", method, original, 0, timestamp, size)


def build_pbo(
    files: Sequence[PboFile | tuple[str | bytes, bytes]] = (),
    *,
    properties: Sequence[tuple[str, str]] = (("prefix", "test_mission"),),
    product: bool = True,
    product_method: int = PRODUCT_METHOD,
    terminator: bytes | None = None,
    trailer: bool = True,
    trailer_byte: bytes = b"\0",
    sha1: bytes | None = None,
    after: bytes = b"",
) -> bytes:
    """A PBO with `files` in order; every keyword breaks one part when changed."""
    entries = [f if isinstance(f, PboFile) else PboFile(f[0], f[1]) for f in files]
    header = bytearray()
    if product:
        header += _entry(b"", product_method, 0, 0, 0)
        for key, value in properties:
            header += key.encode() + b"\0" + value.encode() + b"\0"
        header += b"\0"
    for entry in entries:
        name = entry.name.encode() if isinstance(entry.name, str) else entry.name
        size = len(entry.data) if entry.data_size is None else entry.data_size
        original = entry.original_size if entry.original_size is not None else 0
        header += _entry(name, entry.method, original, entry.timestamp, size)
    header += _entry(b"", 0, 0, 0, 0) if terminator is None else terminator
    body = bytes(header) + b"".join(entry.data for entry in entries)
    if not trailer:
        return body + after
    digest = hashlib.sha1(body).digest() if sha1 is None else sha1
    return body + trailer_byte + digest + after


def mission_pbo(name: str = "co10_Test", *, seed: int = 0, extra: bytes = b"") -> bytes:
    """A small valid mission; a different `seed` (or `extra`) gives different content."""
    sqm = (f'version=54;\nclass Mission\n{{\n\tbriefingName="{name} #{seed}";\n}};\n').encode()
    files: list[tuple[str | bytes, bytes]] = [
        ("description.ext", f'onLoadName = "{name}";\n'.encode()),
        ("init.sqf", b'diag_log "hello";\n' + extra),
        ("mission.sqm", sqm),
        ("scripts\\setup.sqf", b"// nothing\n"),
    ]
    return build_pbo(files, properties=(("prefix", name),))


def padded_mission_pbo(size: int, *, seed: int = 0) -> bytes:
    """A valid mission of about `size` bytes (a filler file makes up the rest)."""
    small = mission_pbo(seed=seed)
    filler = max(0, size - len(small) - 40)
    return mission_pbo(seed=seed, extra=b"/" * filler)
