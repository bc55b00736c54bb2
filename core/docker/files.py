"""Files written into a server's volume through the engine, atomically: never by SSH copy.

The archive endpoint extracts a tar in place [ref §7], which a reader could catch half
written. So every file goes in under a temporary name beside its target, then one `mv -f`
per file renames it (rename(2): readers see the old file or the new one). The rename runs
as an exec in the server's container when it runs, else in a short-lived helper container
of the same image sharing the volume (the archive endpoint also works on a container that
was created but never started [ref §7]), so files can be written before the first start.
Files the bot took away on its side (a deleted mission, a key of a mod that left the set)
are removed by the same script (`rm -f`), before the renames, and so are the files a game
leaves behind when it is killed (the profile's stale globs, e.g. BattlEye's active cfg).
Images need `sh`, `mv` and `rm`, which every Debian- or busybox-based image has.
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

__all__ = ["HELPER_LABEL", "FileWrite", "build_tar", "refusal", "write_files"]

_log = logging.getLogger(__name__)

HELPER_LABEL = "languard.helper"
HELPER_TIMEOUT = 60.0
_APPLY = (
    'r=$1; n=$2; shift 2; while [ "$n" -gt 0 ]; do rm -f -- "$1" || exit 1; shift; n=$((n - 1)); '
    'done; n=$1; shift; while [ "$n" -gt 0 ]; do (cd -- "$r" && IFS= && for f in $1; do '
    'rm -f -- "$f" || exit 1; done) || exit 1; shift; n=$((n - 1)); done; '
    'while [ "$#" -gt 1 ]; do mv -f -- "$1" "$2" || exit 1; shift 2; done'
)
"""Arguments `<root> <n> gone1..gone<n> <g> glob1..glob<g> tmp1 final1 ...`: removes n files,
then what each glob (relative to root, expanded by sh, never split) matches, then renames
the pairs. No file name is ever parsed by sh: names are arguments, quoted where used."""


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


def _arguments(
    root: PurePosixPath,
    files: Sequence[FileWrite],
    removals: Sequence[PurePosixPath],
    patterns: Sequence[str],
    token: str,
) -> list[str]:
    pairs = [str(p) for item in files for p in (_temporary(item.path, token), item.path)]
    gone = [str(path) for path in removals]
    return [str(root), str(len(gone)), *gone, str(len(patterns)), *patterns, *pairs]


def _check_pattern(pattern: str) -> None:
    parts = PurePosixPath(pattern).parts
    if not parts or pattern.startswith("/") or ".." in parts:
        raise ConfigWriteError("refusing to write {name} outside the server", name=pattern)


def refusal(
    files: Sequence[FileWrite], removals: Sequence[PurePosixPath], reason: str
) -> ConfigWriteError:
    """The error of a write (or, with no file to write, a removal) that did not happen."""
    if files or not removals:
        name = files[0].path.name if files else ""
        return ConfigWriteError("cannot write {name}: {reason}", name=name, reason=reason)
    return ConfigWriteError("cannot remove {name}: {reason}", name=removals[0].name, reason=reason)


async def _put(engine: Engine, container_id: str, root: PurePosixPath, tar: bytes) -> None:
    await engine.request(
        "PUT",
        f"containers/{container_id}/archive",
        params={"path": str(root)},
        data=tar,
        headers={"Content-Type": "application/x-tar"},
    )


async def _exec_apply(engine: Engine, container_id: str, args: list[str]) -> tuple[int, str]:
    """Run the removals and renames in the running container; (exit code, what it printed)."""
    created = await engine.request(
        "POST",
        f"containers/{container_id}/exec",
        body={
            "Cmd": ["sh", "-c", _APPLY, "apply", *args],
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


async def _helper_apply(
    engine: Engine,
    image: str,
    mounts: Sequence[Mapping[str, Any]],
    root: PurePosixPath,
    tar: bytes | None,
    args: list[str],
    labels: Mapping[str, str],
) -> tuple[int, str]:
    """Put, remove and rename through a helper container that shares the volume, then
    remove the helper."""
    body = {
        "Image": image,
        "Entrypoint": ["sh", "-c", _APPLY, "apply"],
        "Cmd": args,
        "User": "0",
        "Labels": {HELPER_LABEL: "rename", **labels},
        "HostConfig": {"Mounts": list(mounts), "NetworkMode": "none", "AutoRemove": False},
    }
    name = f"languard-files-{secrets.token_hex(6)}"
    helper = await containers.create(engine, body, name)
    try:
        if tar is not None:
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
    removals: Sequence[PurePosixPath] = (),
    patterns: Sequence[str] = (),
    running: str | None = None,
    image: str = "",
    mounts: Sequence[Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
) -> None:
    """Write `files` (all under `root`, a mount point) atomically, after removing the files
    `removals` and those the globs `patterns` (relative to `root`) match; gone already is
    fine.

    `running`: the id of a running container that mounts `root` (the script runs there);
    else a helper of `image` with `mounts` does it. Raises ConfigWriteError.
    """
    if not files and not removals and not patterns:
        return
    for path in [item.path for item in files] + list(removals):
        if root not in path.parents:
            raise ConfigWriteError("refusing to write {name} outside the server", name=path.name)
    for pattern in patterns:
        _check_pattern(pattern)
    token = secrets.token_hex(6)
    tar = build_tar(root, files, token) if files else None
    args = _arguments(root, files, removals, patterns, token)
    try:
        if running is not None:
            if tar is not None:
                await _put(engine, running, root, tar)
            code, output = await _exec_apply(engine, running, args)
        else:
            code, output = await _helper_apply(engine, image, mounts, root, tar, args, labels or {})
    except EngineRefused as exc:
        raise refusal(files, removals, str(exc.params.get("message", "refused"))) from None
    except TimeoutError:
        raise refusal(files, removals, "the engine took too long") from None
    if code != 0:
        _log.warning("file changes on %s exited %d: %s", engine.host, code, output.strip()[:500])
        raise refusal(files, removals, f"exit code {code} in the container")
