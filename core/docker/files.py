"""Files written into a server's volume through the engine, atomically: never by SSH copy.

The archive endpoint extracts a tar in place [ref §7], which a reader could catch half
written. So every file goes in under a temporary name beside its target, then one `mv -f`
per file renames it (rename(2): readers see the old file or the new one). The rename runs
as an exec in the server's container when it runs, else in a short-lived helper container
of the same image sharing the volume (the archive endpoint also works on a container that
was created but never started [ref §7]), so files can be written before the first start.
Images need `sh` and `mv`, which every Debian- or busybox-based image has.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from core.docker import containers
from core.docker.client import Engine, EngineRefused
from core.docker.logstream import FrameDecoder
from core.errors import ConfigWriteError

__all__ = ["HELPER_LABEL", "FileWrite", "build_tar", "write_files"]

_log = logging.getLogger(__name__)

HELPER_LABEL = "languard.helper"
HELPER_TIMEOUT = 60.0
_RENAME = 'while [ "$#" -gt 1 ]; do mv -f -- "$1" "$2" || exit 1; shift 2; done'
"""Renames pairs `tmp final ...` given as arguments (no file name is ever parsed by sh)."""


@dataclass(frozen=True, slots=True)
class FileWrite:
    """One file: an absolute path inside the container, under the mount being written."""

    path: PurePosixPath
    content: bytes
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def _temporary(path: PurePosixPath, token: str) -> PurePosixPath:
    return path.with_name(f".{path.name}.languard-{token}.tmp")


def build_tar(root: PurePosixPath, files: Sequence[FileWrite], token: str) -> bytes:
    """A tar to extract at `root`: each file under its temporary name, parents included."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders: set[PurePosixPath] = set()
        for item in files:
            relative = item.path.relative_to(root)
            for parent in reversed(relative.parents[:-1]):
                if parent not in folders:
                    folders.add(parent)
                    info = tarfile.TarInfo(str(parent))
                    info.type = tarfile.DIRTYPE
                    info.mode, info.uid, info.gid, info.mtime = 0o755, item.uid, item.gid, now
                    tar.addfile(info)
            info = tarfile.TarInfo(str(_temporary(relative, token)))
            info.size = len(item.content)
            info.mode, info.uid, info.gid, info.mtime = item.mode, item.uid, item.gid, now
            tar.addfile(info, io.BytesIO(item.content))
    return buffer.getvalue()


def _pairs(files: Sequence[FileWrite], token: str) -> list[str]:
    return [str(p) for item in files for p in (_temporary(item.path, token), item.path)]


def _refusal(files: Sequence[FileWrite], reason: str) -> ConfigWriteError:
    return ConfigWriteError(
        "cannot write {name}: {reason}", name=files[0].path.name if files else "", reason=reason
    )


async def _put(engine: Engine, container_id: str, root: PurePosixPath, tar: bytes) -> None:
    await engine.request(
        "PUT",
        f"containers/{container_id}/archive",
        params={"path": str(root)},
        data=tar,
        headers={"Content-Type": "application/x-tar"},
    )


async def _exec_rename(engine: Engine, container_id: str, pairs: list[str]) -> tuple[int, str]:
    """Run the renames in the running container; (exit code, what it printed)."""
    created = await engine.request(
        "POST",
        f"containers/{container_id}/exec",
        body={
            "Cmd": ["sh", "-c", _RENAME, "rename", *pairs],
            "AttachStdout": True,
            "AttachStderr": True,
            "User": "0",
        },
    )
    exec_id = str(created["Id"])
    decoder = FrameDecoder()
    output = bytearray()
    async with asyncio.timeout(HELPER_TIMEOUT):
        async with engine.stream(
            "POST", f"exec/{exec_id}/start", data=json.dumps({"Detach": False, "Tty": False})
        ) as response:
            async for chunk in response.content.iter_any():
                for frame in decoder.feed(chunk):
                    output.extend(frame.payload)
        status = await engine.request("GET", f"exec/{exec_id}/json")
    code = status.get("ExitCode")
    return (-1 if code is None else int(code)), output.decode("utf-8", "replace")


async def _helper_rename(
    engine: Engine,
    image: str,
    mounts: Sequence[Mapping[str, Any]],
    root: PurePosixPath,
    tar: bytes,
    pairs: list[str],
    labels: Mapping[str, str],
) -> tuple[int, str]:
    """Put and rename through a helper container that shares the volume, then remove it."""
    body = {
        "Image": image,
        "Entrypoint": ["sh", "-c", _RENAME, "rename"],
        "Cmd": pairs,
        "User": "0",
        "Labels": {HELPER_LABEL: "rename", **labels},
        "HostConfig": {"Mounts": list(mounts), "NetworkMode": "none", "AutoRemove": False},
    }
    name = f"languard-files-{secrets.token_hex(6)}"
    helper = await containers.create(engine, body, name)
    try:
        await _put(engine, helper, root, tar)
        await containers.start(engine, helper)
        async with asyncio.timeout(HELPER_TIMEOUT):
            state = await containers.wait_stopped(engine, helper)
        logs = await engine.request(
            "GET", f"containers/{helper}/logs", params={"stdout": "1", "stderr": "1"}, raw=True
        )
    finally:
        try:
            await containers.remove(engine, helper, force=True)
        except Exception:
            _log.warning("could not remove helper container %s on %s", helper, engine.host)
    code = -1 if state is None or state.exit_code is None else state.exit_code
    printed = b"".join(frame.payload for frame in FrameDecoder().feed(logs))
    return code, printed.decode("utf-8", "replace")


async def write_files(
    engine: Engine,
    root: PurePosixPath,
    files: Sequence[FileWrite],
    *,
    running: str | None = None,
    image: str = "",
    mounts: Sequence[Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
) -> None:
    """Write `files` (all under `root`, a mount point) atomically.

    `running`: the id of a running container that mounts `root` (the rename runs there);
    else a helper of `image` with `mounts` does it. Raises ConfigWriteError.
    """
    if not files:
        return
    for item in files:
        if root not in item.path.parents:
            raise ConfigWriteError(
                "refusing to write {name} outside the server", name=item.path.name
            )
    token = secrets.token_hex(6)
    tar = build_tar(root, files, token)
    pairs = _pairs(files, token)
    try:
        if running is not None:
            await _put(engine, running, root, tar)
            code, output = await _exec_rename(engine, running, pairs)
        else:
            code, output = await _helper_rename(
                engine, image, mounts, root, tar, pairs, labels or {}
            )
    except EngineRefused as exc:
        raise _refusal(files, str(exc.params.get("message", "refused"))) from None
    except TimeoutError:
        raise _refusal(files, "the engine took too long") from None
    if code != 0:
        _log.warning("renames on %s exited %d: %s", engine.host, code, output.strip()[:500])
        raise _refusal(files, f"rename failed with exit code {code}")
