"""One bot per data folder: a second `python -m bot` on the same data says who holds it.

The first bot is a real process pointed at a Discord that refuses connections (nothing
listens on the port), so it sits in its retry loop holding the lock; it must still stop at
once on SIGTERM while it waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.instance_lock import LOCK_FILE_NAME, InstanceLock, InstanceLocked
from tests.e2e.bot_process import BotProcess, bot_env, free_port


async def test_a_second_bot_on_the_same_data_names_the_first_and_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "var"
    env = bot_env(data, free_port(), DISCORD_TOKEN="fake-bot-token")
    first = await BotProcess.start(tmp_path, env)
    try:
        await first.wait_until(lambda: bool(first.retry_lines()), "a first retry")
        second = subprocess.run(
            [sys.executable, "-m", "bot"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"pid {first.pid}" in lines[0] and str(data) in lines[0]
        assert "Traceback" not in second.stderr
        assert first.proc.returncode is None, "the first bot is not disturbed"
        assert await first.stop(timeout=15) == 0, first.output()
    finally:
        await first.stop()
    assert "Traceback" not in first.output()
    # once the first is gone the lock is free again
    with InstanceLock(data) as lock:
        assert lock.held


def test_the_lock_is_exclusive_and_records_the_holder(tmp_path: Path) -> None:
    holder = InstanceLock(tmp_path)
    holder.acquire()
    try:
        assert (tmp_path / LOCK_FILE_NAME).read_text().strip() == str(os.getpid())
        assert (tmp_path / LOCK_FILE_NAME).stat().st_mode & 0o777 == 0o600
        with pytest.raises(InstanceLocked) as caught:
            InstanceLock(tmp_path).acquire()  # another open file description: refused
        assert caught.value.pid == os.getpid()
    finally:
        holder.release()
    with InstanceLock(tmp_path) as again:
        assert again.held


def test_a_game_started_by_the_bot_never_inherits_the_lock(tmp_path: Path) -> None:
    lock = InstanceLock(tmp_path)
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        close_fds=False,  # even when a spawner forgets close_fds: the fd is close-on-exec
        start_new_session=True,
    )
    try:
        lock.release()
        with InstanceLock(tmp_path) as again:  # the live child does not hold it
            assert again.held
    finally:
        child.kill()
        child.wait(timeout=10)
