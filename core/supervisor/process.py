"""One game-server OS process: spawn it detached, re-adopt it, watch its exit, signal it.

Game servers must outlive the bot: each runs in its own session with stdout/stderr
appended to a file (never a pipe that dies with us), and stdin from a FIFO when the game
has a console. Exit is watched through a pidfd, which works the same for our own children
and for processes adopted from a previous bot, and costs nothing while idle.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from signal import Signals

import psutil

from core.supervisor.runtime_api import (
    ExitStatus,
    LogSource,
    ProcessRecord,
    ResourceSample,
    wait_exit,
)
from core.supervisor.spawn_mode import (
    SpawnMode,
    default_spawn_mode,
    scope_unit_name,
    wrap_argv,
    wrap_env,
)

__all__ = [
    "ExitStatus",
    "ProcessHandle",
    "ProcessIdentity",
    "adopt",
    "boot_id",
    "identity_of",
    "matches_identity",
    "spawn",
    "wait_exit",
]

_log = logging.getLogger(__name__)

CREATE_TIME_TOLERANCE = 0.005
"""Seconds. On Linux the start time is read in clock ticks since boot: exact, and unchanged
by any exec (an `env` shebang, a wrapper's `exec java`, a pyenv shim)."""
_FALLBACK_TOLERANCE = 1.5
"""Elsewhere psutil derives the start from the boot time, which two reads may see apart."""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
_MARKER_ENV = "LANGUARD_SERVER"
"""core.supervisor.strays.MARKER_ENV (strays imports this module): names the game's scope."""


@functools.cache
def boot_id() -> str:
    """This boot of the machine; a process recorded under another boot is never adopted."""
    try:
        return _BOOT_ID_PATH.read_text("ascii").strip()
    except OSError:
        return ""


def start_time_since_boot(pid: int) -> float | None:
    """Seconds from boot to the process start, exactly as the kernel keeps it (Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            raw = stat_file.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields start after the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19]) / _CLOCK_TICKS
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """pid + start time since boot + boot id: what stays true of a process for its life.

    The command line is kept for display only: every exec after spawn changes it.
    """

    pid: int
    create_time: float
    """Seconds since boot (Linux), or minus the wall-clock start time elsewhere."""
    cmdline: tuple[str, ...]
    boot_id: str = ""


def identity_of(pid: int) -> ProcessIdentity | None:
    """The identity of a live (non-zombie) process, or None."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            started = start_time_since_boot(pid)
            if started is None:
                started = -proc.create_time()  # negative: a wall-clock time, not since boot
            try:
                cmdline = tuple(proc.cmdline())
            except psutil.AccessDenied:
                cmdline = ()
            return ProcessIdentity(pid, started, cmdline, boot_id())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def matches_identity(expected: ProcessIdentity, actual: ProcessIdentity | None) -> bool:
    """True when `actual` is the very process `expected` recorded (not a reused pid).

    A record from another boot never matches; a record without a boot id (written before
    boot ids were kept) is judged by its start time alone.
    """
    if actual is None or actual.pid != expected.pid:
        return False
    if expected.boot_id and expected.boot_id != actual.boot_id:
        return False
    if (expected.create_time >= 0) != (actual.create_time >= 0):
        return False
    tolerance = CREATE_TIME_TOLERANCE if expected.create_time >= 0 else _FALLBACK_TOLERANCE
    return abs(actual.create_time - expected.create_time) <= tolerance


def _ensure_fifo(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        os.mkfifo(path, 0o600)
        return
    if not stat.S_ISFIFO(mode):
        path.unlink()
        os.mkfifo(path, 0o600)


class ProcessHandle:
    """A live process we own or adopted (the local runtime's RuntimeHandle). `exited`
    resolves once, with its ExitStatus."""

    def __init__(
        self,
        identity: ProcessIdentity,
        *,
        popen: subprocess.Popen[bytes] | None = None,
        console: Path | None = None,
        started_at: float | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.identity = identity
        self._popen = popen
        self.console_path = console
        self.log_path = log_path
        self._sampled: psutil.Process | None = None
        self.started_at = time.time() if started_at is None else started_at
        self._monotonic_start = time.monotonic() - max(0.0, time.time() - self.started_at)
        self._pidfd: int | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.exited: asyncio.Future[ExitStatus] | None = None

    @property
    def pid(self) -> int:
        return self.identity.pid

    @property
    def ident(self) -> str:
        return str(self.identity.pid)

    @property
    def adopted(self) -> bool:
        return self._popen is None

    def uptime(self) -> float:
        return max(0.0, time.monotonic() - self._monotonic_start)

    def describe(self) -> str:
        return f"pid {self.identity.pid}"

    def record(self) -> ProcessRecord:
        """pid + start time since boot + boot id: what a new bot adopts it by."""
        i = self.identity
        return ProcessRecord(i.pid, i.create_time, i.cmdline, self.started_at, i.boot_id)

    def log_source(self) -> LogSource:
        return LogSource(self.log_path, f"stdout of pid {self.identity.pid}")

    async def sample(self) -> ResourceSample | None:
        """CPU% since the previous sample and RSS of the process and its descendants."""
        proc = self._sampled
        if proc is None:
            try:
                proc = self._sampled = psutil.Process(self.pid)
            except psutil.Error:
                return None
        try:
            members = [proc, *proc.children(recursive=True)]
            cpu = sum(p.cpu_percent(None) for p in members)
            rss = sum(p.memory_info().rss for p in members)
        except psutil.Error:
            return None
        return ResourceSample(cpu, rss)

    # -- exit watching -----------------------------------------------------------------

    def watch(self) -> asyncio.Future[ExitStatus]:
        """Start watching for the exit (idempotent)."""
        if self.exited is not None:
            return self.exited
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.exited = loop.create_future()
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._finish()
            return self.exited
        except OSError as exc:  # no pidfd (old kernel, sandbox): poll instead
            _log.debug("pidfd_open unavailable (%s); polling pid %d", exc, self.pid)
            self._poll_task = loop.create_task(self._poll_exit())
            return self.exited
        loop.add_reader(self._pidfd, self._on_pidfd_ready)
        return self.exited

    def _on_pidfd_ready(self) -> None:
        self._finish()

    async def _poll_exit(self) -> None:
        alive = True
        while alive:
            await asyncio.sleep(0.5)
            alive = self.is_alive()
        self._finish()

    def _finish(self) -> None:
        if self._pidfd is not None and self._loop is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        status = self._reap()
        if self.exited is not None and not self.exited.done():
            self.exited.set_result(status)

    def _reap(self) -> ExitStatus:
        if self._popen is None:
            return ExitStatus(None, None)
        code = self._popen.poll()
        if code is None:  # readable pidfd but not yet reapable: wait briefly
            try:
                code = self._popen.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                return ExitStatus(None, None)
        if code < 0:
            return ExitStatus(None, -code)
        return ExitStatus(code, None)

    def close(self) -> None:
        """Stop watching without touching the process (the bot is going away, the game stays)."""
        if self._popen is not None and self._popen.poll() is None:
            # The game is meant to outlive this Popen: tell subprocess not to warn about it
            # or to reap it behind our back when the object is collected.
            self._popen._child_created = False  # type: ignore[attr-defined]
        if self._poll_task is not None:
            self._poll_task.cancel()
            self._poll_task = None
        if self._pidfd is not None and self._loop is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self.exited is not None and not self.exited.done():
            self.exited.cancel()

    # -- control -----------------------------------------------------------------------

    def is_alive(self) -> bool:
        if self.exited is not None and self.exited.done():
            return False
        if self._popen is not None:
            return self._popen.poll() is None
        return matches_identity(self.identity, identity_of(self.pid))

    async def signal(self, sig: Signals) -> bool:
        """The RuntimeHandle way to `signal_group` (a container's is an API call)."""
        return self.signal_group(sig)

    def signal_group(self, sig: Signals) -> bool:
        """Signal the whole process group; False when nothing was there to signal."""
        if not self.is_alive():
            return False
        try:
            # the group of the process we spawned is its own pid; one found by its marker
            # may be a member whose leader is gone, so ask the kernel rather than assume
            group = os.getpgid(self.pid)
            if group == os.getpgrp():  # never our own group: signal that process alone
                os.kill(self.pid, sig)
            else:
                os.killpg(group, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            _log.warning("not allowed to signal process group %d", self.pid)
            return False
        return True

    def write_console(self, line: str) -> None:
        """Write one line to the game's console FIFO; the line must not contain newlines."""
        if self.console_path is None:
            raise OSError(errno.ENOTSUP, "this game has no console")
        if "\n" in line or "\r" in line:
            raise ValueError("a console line cannot contain a line break")
        fd = os.open(self.console_path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, line.encode("utf-8") + b"\n")
        finally:
            os.close(fd)


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    env: Mapping[str, str],
    console_path: Path | None,
    mode: SpawnMode | None = None,
    unit: str | None = None,
) -> ProcessHandle:
    """Start a process detached from the bot: own session, output appended to `log_path`.

    Under systemd it also gets its own transient scope (see core.supervisor.spawn_mode), so
    restarting the bot's unit cannot kill it. systemd-run execs the game in place, so the
    pid (and start time, session, environment) recorded here is the game's own. `unit`
    names the scope (`instance/id/...`); by default the game's marker does.
    """
    mode = mode or default_spawn_mode()
    command = wrap_argv(mode, argv, scope_unit_name(unit or env.get(_MARKER_ENV)))
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    stdin_fd: int | None = None
    try:
        if console_path is not None:
            _ensure_fifo(console_path)
            # O_RDWR never blocks on a FIFO and keeps a writer open, so the game never sees EOF.
            stdin_fd = os.open(console_path, os.O_RDWR)
        popen = subprocess.Popen(
            command,
            cwd=cwd,
            env=wrap_env(mode, env),
            stdin=stdin_fd if stdin_fd is not None else subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(log_fd)
        if stdin_fd is not None:
            os.close(stdin_fd)
    identity = identity_of(popen.pid)
    if identity is None:  # died at once; keep what we know so its exit is still reported
        identity = ProcessIdentity(popen.pid, -time.time(), tuple(argv), boot_id())
    return ProcessHandle(identity, popen=popen, console=console_path, log_path=log_path)


def adopt(
    identity: ProcessIdentity,
    *,
    console_path: Path | None,
    started_at: float,
    log_path: Path | None = None,
) -> ProcessHandle | None:
    """Re-attach to a process an earlier bot started; None if it is gone or the pid was reused."""
    if not matches_identity(identity, identity_of(identity.pid)):
        return None
    return ProcessHandle(identity, console=console_path, started_at=started_at, log_path=log_path)
