"""One game container as the supervisor sees it: a `RuntimeHandle` (core.supervisor.runtime_api).

The exit is watched with the wait endpoint, then inspect says how it ended (exit code,
`OOMKilled` [ref §4]); the future resolves only once the engine said so and the last log
line is in console.log, so a crash alert shows the game's last words. While the engine does
not answer the future stays pending (the server shows unknown, never crashed) and the watch
retries with backoff. Console lines go to the game's stdin through one attach [ref §6].
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import time
from pathlib import Path

from aiodocker.stream import Stream

from core.backoff import Backoff
from core.docker import containers
from core.docker.client import Engine, EngineRefused, EngineUnreachable
from core.docker.containers import ContainerState, StatsSample
from core.docker.logcopy import LogCopier
from core.supervisor.runtime_api import ExitStatus, LogSource, ProcessRecord, ResourceSample

__all__ = ["DOCKER_BOOT_PREFIX", "DockerHandle", "exit_status"]

_log = logging.getLogger(__name__)

DOCKER_BOOT_PREFIX = "docker:"
"""A ProcessRecord whose boot id starts with this names a container: `docker:<id>`."""
DRAIN_TIMEOUT = 10.0
"""Seconds an exit waits for the container's last log lines to be copied."""
_CONSOLE_QUEUE = 256


def exit_status(state: ContainerState | None) -> ExitStatus:
    """How the container ended; 128+n (a signal killed PID 1) reads as that signal."""
    if state is None or state.exit_code is None:
        return ExitStatus(None, None)
    code = state.exit_code
    if 128 < code < 128 + 65:
        return ExitStatus(None, code - 128, oom_killed=state.oom_killed)
    return ExitStatus(code, None, oom_killed=state.oom_killed)


class DockerHandle:
    """A container we started or adopted on one engine."""

    def __init__(
        self,
        engine: Engine,
        state: ContainerState,
        *,
        log_path: Path,
        started_at: float,
        adopted: bool,
        console: bool,
    ) -> None:
        self.engine = engine
        self.state = state
        self.log_path = log_path
        self._started_at = started_at
        self._monotonic_start = time.monotonic() - max(0.0, time.time() - started_at)
        self._adopted = adopted
        self._console = console
        self._running = state.running
        self.copier = LogCopier(engine, state.id, log_path)
        if not adopted:
            # an adopted one copies from `watch()` on: `find` may offer several handles of
            # which the supervisor keeps one, and two copiers must never share a log
            self.copier.start()
        self.exited: asyncio.Future[ExitStatus] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._console_lines: asyncio.Queue[str] = asyncio.Queue(_CONSOLE_QUEUE)
        self._console_task: asyncio.Task[None] | None = None
        self._attach: Stream | None = None
        self._last_sample: StatsSample | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- identity ------------------------------------------------------------------------

    @property
    def ident(self) -> str:
        return self.state.id

    @property
    def pid(self) -> int | None:
        return None  # the engine's process table, maybe on another machine: never signal it

    @property
    def adopted(self) -> bool:
        return self._adopted

    @property
    def started_at(self) -> float:
        return self._started_at

    def uptime(self) -> float:
        return max(0.0, time.monotonic() - self._monotonic_start)

    def describe(self) -> str:
        return f"container {self.state.id[:12]} on {self.engine.host}"

    def record(self) -> ProcessRecord:
        """The container id travels in the boot id (`docker:<id>`); pid and start time are
        the engine's, for display."""
        return ProcessRecord(
            pid=self.state.pid,
            create_time=self.state.started or 0.0,
            cmdline=("docker", self.engine.host, self.state.id),
            started_at=self._started_at,
            boot_id=DOCKER_BOOT_PREFIX + self.state.id,
        )

    def log_source(self) -> LogSource:
        return LogSource(
            self.log_path, f"log stream of container {self.state.id[:12]} on {self.engine.host}"
        )

    # -- exit ----------------------------------------------------------------------------

    def watch(self) -> asyncio.Future[ExitStatus]:
        if self.exited is None:
            self.copier.start()
            loop = asyncio.get_running_loop()
            self.exited = loop.create_future()
            self._watch_task = loop.create_task(
                self._watch(), name=f"docker-wait-{self.state.id[:12]}"
            )
        return self.exited

    async def _watch(self) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            try:
                state = await containers.wait_stopped(self.engine, self.state.id)
                break
            except EngineUnreachable:
                await asyncio.sleep(backoff.next())
            except EngineRefused as exc:
                _log.warning("%s: wait refused: %s", self.describe(), exc)
                await asyncio.sleep(backoff.next())
        self._running = False
        if state is not None:
            self.state = state
        if not await self.copier.drained(DRAIN_TIMEOUT):
            _log.warning("%s: its last log lines were not all copied", self.describe())
        status = exit_status(state)
        if self.exited is not None and not self.exited.done():
            self.exited.set_result(status)

    def is_alive(self) -> bool:
        if self.exited is not None and self.exited.done():
            return False
        return self._running

    async def signal(self, sig: signal.Signals) -> bool:
        try:
            return await containers.kill(self.engine, self.state.id, sig.name)
        except (EngineUnreachable, EngineRefused) as exc:
            _log.warning("%s: %s not delivered: %s", self.describe(), sig.name, exc)
            return False

    # -- console -------------------------------------------------------------------------

    def write_console(self, line: str) -> None:
        if not self._console:
            raise OSError(errno.ENOTSUP, "this game has no console")
        if "\n" in line or "\r" in line:
            raise ValueError("a console line cannot contain a line break")
        if not self.is_alive():
            raise OSError(errno.EPIPE, "the game is not running")
        try:
            self._console_lines.put_nowait(line)
        except asyncio.QueueFull:
            raise OSError(errno.EAGAIN, "the console is not keeping up") from None
        if self._console_task is None or self._console_task.done():
            self._console_task = asyncio.get_running_loop().create_task(
                self._write_console(), name=f"docker-console-{self.state.id[:12]}"
            )

    async def _write_console(self) -> None:
        while True:
            line = await self._console_lines.get()
            try:
                if self._attach is None:
                    container = self.engine.docker.containers.container(self.state.id)
                    stream = container.attach(stdin=True)
                    async with asyncio.timeout(10.0):
                        await stream.__aenter__()
                    self._attach = stream
                async with asyncio.timeout(10.0):
                    await self._attach.write_in(line.encode("utf-8") + b"\n")
            except Exception as exc:  # engine gone, container stopped: drop the attach
                _log.warning("%s: console line lost: %s", self.describe(), exc)
                await self._close_attach()

    async def _close_attach(self) -> None:
        stream, self._attach = self._attach, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await stream.close()

    # -- resources -----------------------------------------------------------------------

    async def sample(self) -> ResourceSample | None:
        try:
            now = await containers.sample(self.engine, self.state.id)
        except (EngineUnreachable, EngineRefused):
            return None
        if now is None:
            return None
        before, self._last_sample = self._last_sample, now
        return ResourceSample(now.cpu_percent(before), now.memory)

    # -- letting go ----------------------------------------------------------------------

    def close(self) -> None:
        for task in (self._watch_task, self._console_task):
            if task is not None:
                task.cancel()
        if self.exited is not None and not self.exited.done():
            self.exited.cancel()
        loop = asyncio.get_running_loop()
        for closing in (self._close_attach(), self.copier.stop()):
            task = loop.create_task(closing)
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """`close` and wait until the copier let go of the log (tests, the runtime's close)."""
        self.close()
        await self.copier.stop()
        await self._close_attach()
