"""The archive and its manifest (core/backups/archive.py, manifest.py): round trips, files
that change while read, and hostile archives that must be refused whole."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from core.backups import archive as archive_module
from core.backups.archive import (
    FileKeptChanging,
    available_compression,
    extract_verified,
    verify_archive,
    write_archive,
)
from core.backups.layout import BackupKind
from core.backups.manifest import ArchiveInfo, FileRecord, Manifest, ManifestError

COMPRESSIONS = ["gzip"] + (["zstd"] if available_compression() == "zstd" else [])


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _manifest(
    archive: ArchiveInfo, files: tuple[FileRecord, ...], dirs: tuple[str, ...]
) -> Manifest:
    return Manifest("alpha", "fake", time.time(), BackupKind.MANUAL, archive, files, dirs)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_a_written_archive_verifies_and_unpacks_to_the_same_files(
    tmp_path: Path, compression: str
) -> None:
    src = tmp_path / "src"
    (src / "world" / "region").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "world" / "level.dat").write_bytes(os.urandom(5000))
    (src / "world" / "region" / "r.0.0.mca").write_bytes(os.urandom(300_000))
    (src / "ops.json").write_text("[]")
    os.chmod(src / "ops.json", 0o600)
    files = tuple(
        (str(p.relative_to(src)), p.stat().st_size) for p in sorted(src.rglob("*")) if p.is_file()
    )
    dirs = ("empty", "world", "world/region")
    out = tmp_path / "backup"
    out.mkdir()
    seen: list[tuple[int, int]] = []
    info, records = write_archive(
        src, dirs, files, out / "files.tar", compression, lambda d, t: seen.append((d, t))
    )
    assert info.size == (out / "files.tar").stat().st_size
    assert seen[-1] == (305_002, 305_002)
    manifest = _manifest(info, records, dirs)
    assert Manifest.from_json(manifest.to_json()) == manifest
    verify_archive(out, manifest, lambda d, t: None)
    dest = tmp_path / "restored"
    extract_verified(out, manifest, dest, lambda d, t: None)
    assert _tree(dest) == _tree(src)
    assert (dest / "empty").is_dir()
    assert (dest / "ops.json").stat().st_mode & 0o777 == 0o600


def test_a_damaged_archive_fails_verification(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a" * 1000)
    out = tmp_path / "b"
    out.mkdir()
    info, records = write_archive(src, (), (("a", 1000),), out / "f.tgz", "gzip", lambda d, t: None)
    data = bytearray((out / "f.tgz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "f.tgz").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="does not match"):
        verify_archive(out, _manifest(info, records, ()), lambda d, t: None)


def test_a_file_rewritten_while_read_is_read_again_until_consistent(tmp_path: Path) -> None:
    """The writer rewrites the file in place, in two halves; every copy must be whole."""
    src = tmp_path / "src"
    src.mkdir()
    path = src / "server.vars.Arma3Profile"
    stop = threading.Event()

    def writer() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            body = f"begin={count}\n".encode() + b"x" * 200_000 + f"\nend={count}\n".encode()
            with path.open("wb") as out:
                out.write(body[:100_000])
                out.flush()
                time.sleep(0.002)
                out.write(body[100_000:])
            time.sleep(0.15)  # a game saves in bursts, a few times a second at most

    path.write_bytes(b"begin=0\nend=0\n")
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for attempt in range(8):
            out = tmp_path / f"b{attempt}"
            out.mkdir()
            info, records = write_archive(
                src, (), ((path.name, 1),), out / "f.tgz", "gzip", lambda d, t: None
            )
            dest = tmp_path / f"r{attempt}"
            extract_verified(out, _manifest(info, records, ()), dest, lambda d, t: None)
            lines = (dest / path.name).read_bytes().split(b"\n")
            assert lines[0].removeprefix(b"begin=") == lines[-2].removeprefix(b"end=")
    finally:
        stop.set()
        thread.join()


def test_a_file_caught_half_written_between_two_writes_is_not_taken(tmp_path: Path) -> None:
    """The reader arrives while the game pauses half-way through a save: nothing changes
    while it reads, yet the copy would be torn. It waits for the file to be quiet."""
    src = tmp_path / "src"
    src.mkdir()
    path = src / "server.vars.Arma3Profile"
    whole = b"begin=7\n" + b"x" * 50_000 + b"\nend=7\n"
    with path.open("wb") as out:
        out.write(whole[:20_000])
    timer = threading.Timer(0.03, lambda: path.write_bytes(whole))
    timer.start()
    out_dir = tmp_path / "b"
    out_dir.mkdir()
    try:
        _, records = write_archive(
            src, (), ((path.name, 1),), out_dir / "f.tgz", "gzip", lambda d, t: None
        )
    finally:
        timer.join()
    assert records[0].size == len(whole)
    assert records[0].sha256 == hashlib.sha256(whole).hexdigest()


def test_a_file_that_never_settles_gives_up_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_module, "READ_ATTEMPTS", 3)
    src = tmp_path / "src"
    src.mkdir()
    (src / "busy").write_bytes(b"0")
    real = archive_module._read_once
    calls = 0

    def changing(path: Path, spool: IO[bytes]) -> object:
        nonlocal calls
        calls += 1
        path.write_bytes(str(calls).encode() * calls)  # a write between every read
        return real(path, spool) and None

    monkeypatch.setattr(archive_module, "_read_once", changing)
    out = tmp_path / "b"
    out.mkdir()
    with pytest.raises(FileKeptChanging) as caught:
        write_archive(src, (), (("busy", 1),), out / "f.tgz", "gzip", lambda d, t: None)
    assert caught.value.path == "busy" and calls == 3


# -- hostile archives ----------------------------------------------------------------------


def _hostile(tmp_path: Path, build: object, listed: list[FileRecord]) -> tuple[Path, Manifest]:
    """An archive made by `build(tar)` with a manifest that matches it byte for byte."""
    out = tmp_path / "evil"
    out.mkdir(parents=True)
    with tarfile.open(out / "files.tar.gz", "w:gz") as tar:
        build(tar)  # type: ignore[operator]
    data = (out / "files.tar.gz").read_bytes()
    info = ArchiveInfo("files.tar.gz", len(data), hashlib.sha256(data).hexdigest(), "gzip")
    manifest = Manifest("alpha", "fake", 0.0, BackupKind.MANUAL, info, tuple(listed), ())
    return out, manifest


def _add(
    tar: tarfile.TarFile,
    name: str,
    data: bytes = b"evil",
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _record(name: str, data: bytes = b"evil") -> FileRecord:
    return FileRecord(name, len(data), hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    "name", ["../escape", "/etc/evil", "a/../../escape", "./x/../../escape", ".languard-restore/x"]
)
def test_an_unsafe_name_is_refused_even_in_the_manifest(tmp_path: Path, name: str) -> None:
    _, listed = _hostile(tmp_path, lambda tar: _add(tar, name), [_record(name)])
    with pytest.raises(ManifestError, match=r"unsafe|usable"):
        Manifest.from_json(listed.to_json())
    # and an archive holding it under a manifest that lists something else
    out, manifest = _hostile(tmp_path / "2", lambda tar: _add(tar, name), [_record("ok")])
    with pytest.raises(ManifestError):
        extract_verified(out, manifest, tmp_path / "dest", lambda d, t: None)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "2" / "escape").exists()


@pytest.mark.parametrize(
    ("kind", "link"),
    [(tarfile.SYMTYPE, "/etc/passwd"), (tarfile.LNKTYPE, "other"), (tarfile.FIFOTYPE, "")],
)
def test_links_and_special_files_are_refused(tmp_path: Path, kind: bytes, link: str) -> None:
    def build(tar: tarfile.TarFile) -> None:
        _add(tar, "other")
        _add(tar, "sneaky", kind=kind, link=link)

    out, manifest = _hostile(tmp_path, build, [_record("other"), _record("sneaky", b"")])
    with pytest.raises(ManifestError, match="unexpected entry"):
        extract_verified(out, manifest, tmp_path / "dest", lambda d, t: None)


def test_a_link_then_a_file_through_it_cannot_escape(tmp_path: Path) -> None:
    def build(tar: tarfile.TarFile) -> None:
        _add(tar, "dir", kind=tarfile.SYMTYPE, link=str(tmp_path))
        _add(tar, "dir/escaped")

    out, manifest = _hostile(tmp_path, build, [_record("dir/escaped")])
    with pytest.raises(ManifestError):
        extract_verified(out, manifest, tmp_path / "dest", lambda d, t: None)
    assert not (tmp_path / "escaped").exists()


def test_unlisted_missing_or_altered_files_are_refused(tmp_path: Path) -> None:
    def one(tar: tarfile.TarFile) -> None:
        _add(tar, "a", b"hello")

    cases = [
        ([_record("b", b"hello")], "unexpected entry"),  # not listed
        ([_record("a", b"hello"), _record("b")], "missing"),  # listed, absent
        ([FileRecord("a", 5, hashlib.sha256(b"HELLO").hexdigest())], "does not match"),
        ([_record("a", b"hello!")], "unexpected entry"),  # another size
    ]
    for index, (listed, problem) in enumerate(cases):
        out, manifest = _hostile(tmp_path / str(index), one, listed)
        with pytest.raises(ManifestError, match=problem):
            extract_verified(out, manifest, tmp_path / str(index) / "dest", lambda d, t: None)


def test_garbage_is_not_an_archive(tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    data = os.urandom(4096)
    (out / "files.tar.gz").write_bytes(data)
    info = ArchiveInfo("files.tar.gz", len(data), hashlib.sha256(data).hexdigest(), "gzip")
    manifest = Manifest("alpha", "fake", 0.0, BackupKind.MANUAL, info, (), ())
    with pytest.raises(ManifestError, match="cannot be read"):
        extract_verified(out, manifest, tmp_path / "dest", lambda d, t: None)


@pytest.mark.parametrize(
    "text",
    [
        b"not json",
        b'{"format": 2}',
        b'{"format": 1, "server": "a"}',
    ],
)
def test_a_malformed_manifest_is_refused(text: bytes) -> None:
    with pytest.raises(ManifestError):
        Manifest.from_json(text)
