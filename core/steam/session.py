"""One SteamCMD run as a child process: read its output line by line, stop it when stuck.

SteamCMD is started as an asyncio subprocess (the event loop only waits on its pipe), in a
session of its own so that a stop reaches every process it started: SIGTERM to the group,
then SIGKILL after a grace period. Its stdin is /dev/null and it is watched for the Steam
Guard question, which otherwise blocks forever (LinuxGSM #570/#579; shared/reference/
steamcmd-workshop-and-headless.md §1.2). It is stopped when it prints nothing for
`stall_timeout` seconds or runs past `timeout` (a Workshop item is given up by SteamCMD
itself about 5 minutes after it starts, §1.7, so long silence means it hangs).
Secrets are masked in every line before it is logged or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.steam.errors import SteamCmdUnavailable
from core.steam.output import GuardRequired, LineSplitter, OutputParser, SteamEvent

__all__ = ["EventHandler", "SessionResult", "mask", "run_session"]

_log = logging.getLogger(__name__)

EventHandler = Callable[[SteamEvent], Awaitable[None] | None]
_CHUNK = 64 * 1024
_REAP_TIMEOUT = 5.0


@dataclass
class SessionResult:
    """How the run ended. `exit_code` is None when a signal ended it."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    stopped_for: SteamEvent | None = None
    tail: list[str] = field(default_factory=list)
    """The last lines printed, secrets masked (for a log record, never shown to members)."""


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def _stop(proc: asyncio.subprocess.Process, grace: float) -> None:
    """TERM the whole group, wait `grace`, then KILL it; the leader is reaped."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=grace)
    _signal_group(proc.pid, signal.SIGKILL)  # also whatever it left behind in its group
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), timeout=_REAP_TIMEOUT)


async def run_session(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_event: EventHandler,
    secrets: Sequence[str] = (),
    timeout: float,
    stall_timeout: float,
    kill_grace: float = 10.0,
    max_line: int = 4096,
    tail_lines: int = 40,
) -> SessionResult:
    """Run SteamCMD once and feed each parsed event to `on_event` (awaited in order).

    Cancelling the caller stops the process group before the cancellation goes on.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise SteamCmdUnavailable(
            "SteamCMD could not be started ({reason}); check LANGUARD_STEAMCMD",
            reason=exc.strerror or type(exc).__name__,
        ) from None
    loop = asyncio.get_running_loop()
    result = SessionResult()
    tail: deque[str] = deque(maxlen=tail_lines)
    splitter = LineSplitter(max_line)
    parser = OutputParser()
    last_output = loop.time()
    stop = asyncio.Event()

    async def handle(lines: list[str]) -> None:
        for line in lines:
            shown = mask(line, secrets)
            tail.append(shown)
            _log.debug("steamcmd[%d]: %s", proc.pid, shown)
            for event in parser.feed(shown):  # parsed masked: no event can carry a secret
                await deliver(event)

    async def deliver(event: SteamEvent) -> None:
        outcome = on_event(event)
        if inspect.isawaitable(outcome):
            await outcome
        if isinstance(event, GuardRequired):
            result.stopped_for = event
            stop.set()

    async def pump() -> None:
        nonlocal last_output
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(_CHUNK):
            last_output = loop.time()
            lines = splitter.feed(chunk)
            prompt = splitter.take_prompt()  # a question without a newline, waiting on stdin
            await handle([*lines, prompt] if prompt else lines)
            for event in parser.feed_pending(mask(splitter.pending(), secrets)):
                await deliver(event)
            if stop.is_set():
                return
        await handle(splitter.flush())

    deadline = loop.time() + timeout
    reader = asyncio.create_task(pump(), name=f"steamcmd-{proc.pid}-output")
    exited = asyncio.create_task(proc.wait(), name=f"steamcmd-{proc.pid}-wait")
    waiting: set[asyncio.Task[Any]] = {reader, exited}
    try:
        while not reader.done():
            now = loop.time()
            left = min(deadline, last_output + stall_timeout) - now
            if left <= 0:
                result.timed_out = True
                _log.warning("SteamCMD (pid %d) stopped answering; stopping it", proc.pid)
                break
            done, _ = await asyncio.wait(waiting, timeout=left, return_when="FIRST_COMPLETED")
            if exited in done and exited in waiting:
                waiting.discard(exited)
                # the leader is gone: anything left in its group only holds the pipe open
                _signal_group(proc.pid, signal.SIGKILL)
        if reader.done() and not reader.cancelled():
            reader.result()  # raise what the reader (or on_event) raised
            if result.stopped_for is None and not exited.done():
                # end of output comes a moment before the exit is seen: let it exit itself
                await asyncio.wait({exited}, timeout=max(0.1, min(5.0, deadline - loop.time())))
    finally:
        if proc.returncode is None or result.timed_out or result.stopped_for is not None:
            await _stop(proc, kill_grace)
        elif exited in waiting:  # not yet done above: sweep what it left in its group
            _signal_group(proc.pid, signal.SIGKILL)
        for task in (reader, exited):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        result.tail = list(tail)
    code = proc.returncode
    if code is not None and code < 0:
        result.signal = -code
    else:
        result.exit_code = code
    return result
