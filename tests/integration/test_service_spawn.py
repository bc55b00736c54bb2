"""Games under systemd: spawn() goes through `systemd-run --scope`, and the game keeps its
own pid, start time, session and LANGUARD_SERVER marker, so adoption still finds it.

The `systemd-run` here is a fake on PATH that does what systemd-run(1) says the real one
does with --scope: it parses its options up to `--`, then runs the command itself ("it
will be executed by systemd-run itself ... and will thus inherit the execution environment
of the caller"; the source does execvpe()). /run/systemd/system is a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from core.supervisor.process import identity_of, matches_identity, spawn
from core.supervisor.spawn_mode import detect_spawn_mode
from core.supervisor.strays import MARKER_ENV, find_marked
from tests.integration.supervision import kill_groups

FAKE_SYSTEMD_RUN = """#!/bin/sh
# A stand-in for systemd-run --scope: record the call, parse options up to --, exec the rest.
if [ "$1" = "--version" ]; then echo "systemd 256 (256-fake)"; echo "+PAM"; exit 0; fi
{refuse}
printf '%s %s\\n' "$$" "$*" >> "{calls}"
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; exec "$@" ;;
    --scope|--quiet|--collect|--user|--no-ask-password|--expand-environment=*|--unit=*) shift ;;
    *) echo "systemd-run: unknown option $1" >&2; exit 1 ;;
  esac
done
echo "systemd-run: no command" >&2
exit 1
"""
REFUSE = 'echo "Failed to start transient scope unit: Access denied" >&2; exit 1'

GAME = """
import os, sys, time
with open(sys.argv[1], "w") as out:
    out.write(f"{os.getpid()} {os.getsid(0)} {os.environ.get('LANGUARD_SERVER')}")
time.sleep(60)
"""


def fake_host(tmp_path: Path, *, refuse: bool = False) -> tuple[Path, Path, Path]:
    """A PATH folder with the fake systemd-run, its call log, and a fake /run/systemd/system."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    script = bin_dir / "systemd-run"
    script.write_text(FAKE_SYSTEMD_RUN.format(calls=calls, refuse=REFUSE if refuse else ""))
    script.chmod(0o755)
    systemd_dir = tmp_path / "run-systemd-system"
    systemd_dir.mkdir()
    return bin_dir, calls, systemd_dir


async def wait_for_file(path: Path, timeout: float = 15.0) -> str:
    async with asyncio.timeout(timeout):
        while not path.exists() or not path.read_text():
            await asyncio.sleep(0.02)
    return path.read_text()


async def test_a_game_in_its_own_scope_keeps_its_identity_and_marker(tmp_path: Path) -> None:
    bin_dir, calls, systemd_dir = fake_host(tmp_path)
    mode = detect_spawn_mode(systemd_dir=systemd_dir, path=str(bin_dir), euid=0)
    assert mode.kind == "scope", mode.reason
    assert mode.version == 256
    calls.unlink()  # forget the probe's call
    seen = tmp_path / "seen.txt"
    env = {"PATH": os.environ["PATH"], MARKER_ENV: "feedbeef0001/42"}
    handle = spawn(
        [sys.executable, "-c", GAME, str(seen)],
        cwd=tmp_path,
        log_path=tmp_path / "console.log",
        env=env,
        console_path=None,
        mode=mode,
    )
    try:
        pid, sid, marker = (await wait_for_file(seen)).split()
        # systemd-run exec'd the game: the pid Popen saw, systemd-run's and the game's are one
        wrapper_pid, wrapper_args = calls.read_text().split(" ", 1)
        assert int(pid) == handle.pid == int(wrapper_pid)
        assert "--scope" in wrapper_args and "--unit=languard-feedbeef0001-42-" in wrapper_args
        assert "--expand-environment=no" in wrapper_args
        assert int(sid) == handle.pid, "the game leads its own session, as without systemd"
        assert marker == "feedbeef0001/42"
        # the recorded identity (start time since boot) is still the live game's
        assert matches_identity(handle.identity, identity_of(handle.pid))
        assert [i.pid for i in find_marked("feedbeef0001", 42)] == [handle.pid]
        assert "systemd-run" not in (tmp_path / "console.log").read_text()  # --quiet
    finally:
        kill_groups([handle.pid])
        handle.close()


async def test_without_systemd_the_fake_is_never_called(tmp_path: Path) -> None:
    bin_dir, calls, _ = fake_host(tmp_path)
    mode = detect_spawn_mode(systemd_dir=tmp_path / "absent", path=str(bin_dir), euid=0)
    assert mode.kind == "session"
    seen = tmp_path / "seen.txt"
    handle = spawn(
        [sys.executable, "-c", GAME, str(seen)],
        cwd=tmp_path,
        log_path=tmp_path / "console.log",
        env={"PATH": os.environ["PATH"], MARKER_ENV: "feedbeef0002/1"},
        console_path=None,
        mode=mode,
    )
    try:
        pid, sid, _ = (await wait_for_file(seen)).split()
        assert int(pid) == int(sid) == handle.pid
        assert not calls.exists()
    finally:
        kill_groups([handle.pid])
        handle.close()


@pytest.mark.parametrize("euid", [0, 1000])
def test_a_systemd_run_that_refuses_this_user_means_own_session(tmp_path: Path, euid: int) -> None:
    bin_dir, _, systemd_dir = fake_host(tmp_path, refuse=True)
    mode = detect_spawn_mode(systemd_dir=systemd_dir, path=str(bin_dir), euid=euid)
    assert mode.kind == "session"
    assert "Access denied" in mode.reason and f"uid {euid}" in mode.reason
