"""The archive of a backup: a tar stream, zstd-compressed when `zstandard` is installed,
gzip otherwise, written and read in one pass on a worker thread.

Writing: each file is read whole into a spool (memory, then a temp file beside the
archive) while hashed, and only then added, so the tar header's size is the size read. A
file that changed while it was read (its size, times or inode moved, or, for a small file
written in the last seconds, a second read differs) is read again, a bounded number of
times; a game writing between two reads is how Arma keeps its `*.vars.Arma3Profile`.

Reading: every entry must be a plain file or folder whose name is a safe relative path
that the manifest lists with the same size and SHA-256; anything else (a link, a device,
`..`, an absolute name, an unlisted or missing file) refuses the whole archive. Files are
unpacked only into a fresh folder that this code created, with O_EXCL and O_NOFOLLOW.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import importlib
import io
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from core.backups.manifest import ArchiveInfo, FileRecord, Manifest, ManifestError, safe_path

__all__ = [
    "FileKeptChanging",
    "available_compression",
    "extract_verified",
    "hash_file",
    "verify_archive",
    "write_archive",
]

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 8 * 1024 * 1024
READ_ATTEMPTS = 8
QUIET_NS = 100_000_000
"""A file modified less than this long ago must then stay untouched for this long: a
reader that fell between two writes of the game (half a file written) would otherwise see
a file that does not change while it is read."""
DOUBLE_READ_MAX = 8 * 1024 * 1024
"""Such a file, when small, is also read a second time and the copies compared: the
kernel's file times are coarse, so a write within the same tick leaves them unchanged."""
_VANISHED = frozenset({errno.ENOENT, errno.ELOOP, errno.ENXIO, errno.ENOTDIR})

Progress = Callable[[int, int], None]
"""(bytes done, bytes in all); it may raise to stop the work (a cancelled job)."""


class FileKeptChanging(Exception):
    """A file changed during every one of the bounded reads; `.path` says which."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _zstandard() -> Any | None:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


def available_compression() -> str:
    """`zstd` when the `zstandard` package is installed, else `gzip`."""
    return "zstd" if _zstandard() is not None else "gzip"


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what goes to the archive file, so it is never read back."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.size = 0
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._raw.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)


@contextlib.contextmanager
def _compressor(compression: str, sink: Any) -> Iterator[IO[bytes]]:
    if compression == "zstd":
        zstd = _zstandard()
        if zstd is None:
            raise RuntimeError("zstandard is not installed")
        writer = zstd.ZstdCompressor(level=3).stream_writer(sink, closefd=False)
        try:
            yield writer
        finally:
            writer.close()
    else:
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0) as writer:
            yield writer  # type: ignore[misc]


@contextlib.contextmanager
def _decompressor(compression: str, source: IO[bytes]) -> Iterator[IO[bytes]]:
    if compression == "zstd":
        zstd = _zstandard()
        if zstd is None:
            raise ManifestError("this backup is zstd-compressed; install zstandard to read it")
        reader = zstd.ZstdDecompressor().stream_reader(source, closefd=False)
        try:
            yield reader
        finally:
            reader.close()
    elif compression == "gzip":
        with gzip.GzipFile(fileobj=source, mode="rb") as reader:
            yield reader  # type: ignore[misc]
    else:
        raise ManifestError("the archive has an unknown compression")


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (
        b.st_ino,
        b.st_dev,
        b.st_size,
        b.st_mtime_ns,
        b.st_ctime_ns,
    )


def _read_once(path: Path, spool: IO[bytes]) -> tuple[os.stat_result, str, int] | None:
    """Copy the file into `spool`; (its stat, sha256, size), or None if it moved meanwhile."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise FileNotFoundError(errno.ENOENT, "not a regular file", str(path))
        digest = hashlib.sha256()
        size = 0
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
            spool.write(chunk)
            size += len(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return None
    if not (_same(before, after) and _same(before, now)) or size != before.st_size:
        return None
    return before, digest.hexdigest(), size


def _settled(path: Path, info: os.stat_result, sha: str) -> bool:
    """Whether a file just read was at rest: untouched for QUIET_NS, and (when small and
    recent) the same on a second read."""
    age = time.time_ns() - info.st_mtime_ns
    if age >= QUIET_NS:
        return True
    time.sleep((QUIET_NS - age) / 1e9)
    try:
        if not _same(info, os.lstat(path)):
            return False
    except FileNotFoundError:
        return False
    if info.st_size > DOUBLE_READ_MAX:
        return True
    again = _read_once(path, io.BytesIO())
    return again is not None and again[1] == sha


def read_stable(path: Path, spool_dir: Path, rel: str) -> tuple[IO[bytes], FileRecord]:
    """The file's content in a spool (positioned at 0) and its record, read consistently."""
    for attempt in range(READ_ATTEMPTS):
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (returned)
            max_size=SPOOL_IN_MEMORY, dir=str(spool_dir)
        )
        try:
            got = _read_once(path, spool)
            if got is not None and not _settled(path, got[0], got[1]):
                got = None
            if got is not None:
                info, sha, size = got
                spool.seek(0)
                mode = stat.S_IMODE(info.st_mode)
                return spool, FileRecord(rel, size, sha, mode, info.st_mtime_ns / 1e9)
        except BaseException:
            spool.close()
            raise
        spool.close()
        time.sleep(min(0.5, 0.01 * 2**attempt))
    raise FileKeptChanging(rel)


def write_archive(
    folder: Path,
    dirs: tuple[str, ...],
    files: tuple[tuple[str, int], ...],
    target: Path,
    compression: str,
    progress: Progress,
) -> tuple[ArchiveInfo, tuple[FileRecord, ...]]:
    """Write `dirs` and `files` (relative to `folder`) into the new file `target`.

    A file that vanished since the walk is left out (the game deleted it). Returns the
    archive's size and hash and the records of the files as they were read.
    """
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw:
        sink = _HashingWriter(raw)
        with (
            _compressor(compression, sink) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            records = _add_all(tar, folder, dirs, files, target.parent, progress)
        raw.flush()
        os.fsync(raw.fileno())
    archive = ArchiveInfo(target.name, sink.size, sink.digest.hexdigest(), compression)
    return archive, records


def _add_all(
    tar: tarfile.TarFile,
    folder: Path,
    dirs: tuple[str, ...],
    files: tuple[tuple[str, int], ...],
    spool_dir: Path,
    progress: Progress,
) -> tuple[FileRecord, ...]:
    for rel in dirs:
        info = tarfile.TarInfo(rel)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    total = sum(size for _, size in files)
    done = 0
    records: list[FileRecord] = []
    progress(0, total)
    for rel, size in files:
        try:
            spool, record = read_stable(folder / rel, spool_dir, rel)
        except OSError as exc:
            if exc.errno not in _VANISHED:
                raise
            done += size  # deleted (or made a link) by the game since the walk
            continue
        with spool:
            info = tarfile.TarInfo(rel)
            info.size = record.size
            info.mode = record.mode
            info.mtime = int(record.mtime)
            tar.addfile(info, spool)
        records.append(record)
        done += size
        progress(done, max(total, done))
    return tuple(records)


def hash_file(path: Path, progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """(size, sha256) of a file, never following a link."""
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return size, digest.hexdigest()


def verify_archive(backup: Path, manifest: Manifest, progress: Progress) -> None:
    """The archive file has the size and SHA-256 the manifest says (ManifestError else)."""
    path = backup / safe_path(manifest.archive.name)
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress(done, manifest.archive.size)

    try:
        size, sha = hash_file(path, step)
    except OSError:
        raise ManifestError("the archive is missing or unreadable") from None
    if (size, sha) != (manifest.archive.size, manifest.archive.sha256):
        raise ManifestError("the archive does not match its manifest")


def extract_verified(backup: Path, manifest: Manifest, dest: Path, progress: Progress) -> None:
    """Unpack the archive into the empty new folder `dest`, checking every entry against
    the manifest; ManifestError (and nothing usable left in `dest`) on any mismatch."""
    expected = {f.path: f for f in manifest.files}
    dirs = set(manifest.dirs)
    total = manifest.total_bytes
    done = 0
    dest.mkdir(mode=0o700)
    path = backup / safe_path(manifest.archive.name)
    try:
        source = path.open("rb")
    except OSError:
        raise ManifestError("the archive is missing or unreadable") from None
    with source, _decompressor(manifest.archive.compression, source) as stream:
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    name = safe_path(member.name)
                    if member.isdir():
                        if name not in dirs:
                            raise ManifestError(f"unlisted folder {name[:100]!r}")
                        _make_dirs(dest, name)
                        continue
                    record = expected.pop(name, None)
                    if not member.isreg() or record is None or member.size != record.size:
                        raise ManifestError(f"unexpected entry {name[:100]!r}")
                    handle = tar.extractfile(member)
                    assert handle is not None
                    _write_checked(dest, record, handle)
                    done += record.size
                    progress(done, total)
        except ManifestError:
            raise
        except OSError as exc:
            if exc.errno is not None:
                raise  # the disk (full, failing), not the archive
            raise ManifestError("the archive cannot be read") from None
        except Exception:  # tarfile, zlib or zstd found the stream damaged
            raise ManifestError("the archive cannot be read") from None
    if expected:
        first = sorted(expected)[0]
        raise ManifestError(f"{first[:100]!r} is missing from the archive")


def _make_dirs(dest: Path, rel: str) -> Path:
    current = dest
    for part in rel.split("/"):
        current = current / part
        try:
            current.mkdir(mode=0o755)
        except FileExistsError:
            if not stat.S_ISDIR(current.lstat().st_mode):
                raise ManifestError(f"entry {rel[:100]!r} clashes with a file") from None
    return current


def _write_checked(dest: Path, record: FileRecord, handle: IO[bytes]) -> None:
    parent = record.path.rpartition("/")[0]
    folder = _make_dirs(dest, parent) if parent else dest
    target = folder / record.path.rpartition("/")[2]
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ManifestError(f"entry {record.path[:100]!r} appears twice") from None
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := handle.read(CHUNK):
            size += len(chunk)
            if size > record.size:
                raise ManifestError(f"{record.path[:100]!r} does not match its manifest")
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(target, record.mode & 0o777)
    os.utime(target, (record.mtime, record.mtime))
    if size != record.size or digest.hexdigest() != record.sha256:
        raise ManifestError(f"{record.path[:100]!r} does not match its manifest")
