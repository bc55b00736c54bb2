"""`python -m bot` as a real process for tests: its environment, its stderr, waiting on it.

The process cannot be patched, so it is pointed at a fake Discord with the test-only
LANGUARD_DISCORD_API_BASE (bot/api_base.py), which only accepts http://127.0.0.1:<port>.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RETRY_MARK = "cannot reach Discord (attempt "


def free_port() -> int:
    """A port nothing listens on now (the OS picked it; it is released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(data_dir: Path, api_port: int, **extra: str) -> dict[str, str]:
    """The environment of a bot process: no inherited Languard settings, the fake's address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANGUARD_")}
    env.pop("DISCORD_TOKEN", None)
    env.update(
        PYTHONPATH=str(ROOT),
        LANGUARD_DATA_DIR=str(data_dir),
        LANGUARD_DISCORD_API_BASE=f"http://127.0.0.1:{api_port}",
        LANGUARD_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class BotProcess:
    """A running `python -m bot`; its stderr is read into `lines` as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, cwd: Path, env: dict[str, str]) -> BotProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=cwd,  # no .env there
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    def retry_lines(self) -> list[str]:
        return [line for line in self.lines if RETRY_MARK in line]

    async def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        """Until `check()` holds (re-checked at each stderr line), or fail with the output."""
        try:
            async with asyncio.timeout(timeout):
                while not check():
                    if self._reader.done() and self.proc.returncode is not None:
                        raise AssertionError(f"the bot exited before {what}")
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout}s:\n" + self.output()) from None

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (SIGKILL if it does not exit in time)."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def wait(self, timeout: float = 30.0) -> int:
        try:
            async with asyncio.timeout(timeout):
                code = await self.proc.wait()
                await self._reader
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"the bot did not exit within {timeout}s") from None
        return code

    def output(self) -> str:
        return "\n".join(self.lines)
