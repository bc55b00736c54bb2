"""How a game process is started: in its own systemd scope, or in its own session.

Under systemd the bot runs as `languard.service`, and every process it forks lands in that
unit's cgroup. On `systemctl restart languard` the default KillMode=control-group would kill
the whole cgroup, games included, and adoption would silently have nothing to adopt. So when
systemd is there, each game is started through

    systemd-run --scope --quiet --collect --unit=languard-<instance>-<id>-<random> -- argv...

which moves it into a transient scope unit of its own. systemd-run(1): "If a command is run
as transient scope unit, it will be executed by systemd-run itself as parent process and
will thus inherit the execution environment of the caller" -- systemd-run registers the
scope for its own pid and then execve()s the command (src/run/run.c, start_transient_scope:
`execvpe(arg_cmdline[0], arg_cmdline, env)`). The pid Popen returns, its start time, its
session and its environment (the LANGUARD_SERVER marker) are therefore the game's own, and
the supervisor's recorded identity stays true. Since systemd 254 systemd-run expands `$VAR`
in a scope's command line itself (man page, --expand-environment=, "in --scope mode this
expansion is done by systemd-run"); an argv is data, never a template, so newer versions get
`--expand-environment=no`. Without systemd (or when systemd-run is refused to this user) the
game gets its own session only, as before; the unit's KillMode=process is the second guard.

The choice is pure (`choose_spawn_mode`, `wrap_argv`, `wrap_env`); `detect_spawn_mode`
gathers the facts, including one probe run of systemd-run, and `default_spawn_mode` caches it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "SYSTEMD_DIR",
    "SpawnMode",
    "SystemdFacts",
    "choose_spawn_mode",
    "default_spawn_mode",
    "detect_spawn_mode",
    "scope_unit_name",
    "wrap_argv",
    "wrap_env",
]

_log = logging.getLogger(__name__)

SYSTEMD_DIR = Path("/run/systemd/system")
"""sd_booted(3): this directory exists exactly when systemd is the init system."""
EXPAND_ENVIRONMENT_SINCE = 254
_PROBE_TIMEOUT = 10.0
_USER_BUS_ENV = ("XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS")
"""What `systemd-run --user` needs to find the user's service manager."""


@dataclass(frozen=True, slots=True)
class SpawnMode:
    """`scope`: start through systemd-run; `session`: a plain own-session child."""

    kind: Literal["scope", "session"]
    reason: str
    systemd_run: str | None = None
    """Absolute path of systemd-run (the game's PATH may not have it)."""
    user_manager: bool = False
    """Talk to the user's manager (`--user`): an unprivileged bot cannot create system units."""
    version: int | None = None
    manager_env: tuple[tuple[str, str], ...] = ()
    """What systemd-run needs to reach that manager (XDG_RUNTIME_DIR...), added to the env."""


@dataclass(frozen=True, slots=True)
class SystemdFacts:
    """What `detect_spawn_mode` found out about this host."""

    systemd_booted: bool
    systemd_run: str | None
    euid: int
    version: int | None = None
    probe_error: str | None = None
    """None: a probe scope started fine (or was not tried); else why it failed."""
    host_env: tuple[tuple[str, str], ...] = ()
    """The parts of the bot's environment that locate a user manager (XDG_RUNTIME_DIR...)."""


def choose_spawn_mode(facts: SystemdFacts) -> SpawnMode:
    """The mode these facts allow; a scope only when systemd-run really works here."""
    if not facts.systemd_booted:
        return SpawnMode("session", "systemd is not running (no /run/systemd/system)")
    if facts.systemd_run is None:
        return SpawnMode("session", "systemd-run is not on PATH")
    if facts.probe_error is not None:
        return SpawnMode(
            "session", f"systemd-run --scope is not usable as uid {facts.euid}: {facts.probe_error}"
        )
    user = facts.euid != 0
    manager = "the user's service manager" if user else "the system manager"
    return SpawnMode(
        "scope",
        f"each game runs in its own transient scope ({manager})",
        systemd_run=facts.systemd_run,
        user_manager=user,
        version=facts.version,
        manager_env=tuple((k, v) for k, v in facts.host_env if k in _USER_BUS_ENV) if user else (),
    )


def scope_unit_name(marker: str | None, token: str | None = None) -> str:
    """`languard-<instance>-<server id>-<random>` from the `instance/id` marker.

    Only [A-Za-z0-9] survive from the marker, so the name is always a valid unit name.
    """
    token = token or secrets.token_hex(4)
    parts = [re.sub(r"[^A-Za-z0-9]", "", part) for part in (marker or "").split("/")]
    parts = [part[:32] for part in parts if part] or ["game"]
    return "-".join(["languard", *parts, re.sub(r"[^A-Za-z0-9]", "", token)[:16] or "0"])


def wrap_argv(mode: SpawnMode, argv: Sequence[str], unit: str) -> list[str]:
    """The argument list to execute: `argv` itself, or systemd-run that execs `argv`."""
    if not argv:
        raise ValueError("empty command line")
    if mode.kind == "session" or mode.systemd_run is None:
        return list(argv)
    wrapped = [mode.systemd_run]
    if mode.user_manager:
        wrapped.append("--user")
    wrapped += ["--scope", "--quiet", "--collect", "--no-ask-password"]
    if mode.version is not None and mode.version >= EXPAND_ENVIRONMENT_SINCE:
        wrapped.append("--expand-environment=no")
    wrapped += [f"--unit={unit}", "--", *argv]
    return wrapped


def wrap_env(mode: SpawnMode, env: Mapping[str, str]) -> dict[str, str]:
    """The game's environment, plus what `systemd-run --user` needs to reach its manager."""
    out = dict(env)
    if mode.kind == "scope":
        for key, value in mode.manager_env:
            out.setdefault(key, value)
    return out


def parse_version(text: str) -> int | None:
    """`systemd 252 (252.39-1~deb12u2)` -> 252."""
    match = re.match(r"\s*systemd\s+(\d+)", text)
    return int(match.group(1)) if match else None


def _host_env(euid: int) -> dict[str, str]:
    env = {key: os.environ[key] for key in _USER_BUS_ENV if key in os.environ}
    runtime_dir = Path(f"/run/user/{euid}")
    if euid != 0 and "XDG_RUNTIME_DIR" not in env and runtime_dir.is_dir():
        env["XDG_RUNTIME_DIR"] = str(runtime_dir)  # a system service gets none by default
    return env


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_PROBE_TIMEOUT,
        check=False,
    )


def detect_spawn_mode(
    *,
    systemd_dir: Path = SYSTEMD_DIR,
    path: str | None = None,
    euid: int | None = None,
    probe: bool = True,
) -> SpawnMode:
    """Find out whether games can get their own scope here (runs systemd-run once to see)."""
    euid = os.geteuid() if euid is None else euid
    booted = systemd_dir.is_dir()
    found = shutil.which("systemd-run", path=path) if booted else None
    systemd_run = str(Path(found).resolve()) if found else None
    if systemd_run is None:
        return choose_spawn_mode(SystemdFacts(booted, systemd_run, euid))
    host_env = tuple(sorted(_host_env(euid).items()))
    base_env = {"PATH": os.environ.get("PATH", os.defpath)}
    version: int | None = None
    error: str | None = None
    try:
        version = parse_version(_run([systemd_run, "--version"], base_env).stdout)
        candidate = choose_spawn_mode(
            SystemdFacts(booted, systemd_run, euid, version, host_env=host_env)
        )
        if probe:  # exactly as a game will be started: same flags, same kind of environment
            argv = wrap_argv(candidate, ["true"], scope_unit_name("probe"))
            result = _run(argv, wrap_env(candidate, base_env))
            if result.returncode != 0:
                lines = (result.stderr or "").strip().splitlines()
                error = (lines[-1] if lines else f"exit code {result.returncode}")[:200]
    except (OSError, subprocess.SubprocessError) as exc:
        error = str(exc)[:200]
    return choose_spawn_mode(SystemdFacts(booted, systemd_run, euid, version, error, host_env))


@functools.cache
def default_spawn_mode() -> SpawnMode:
    """This host's mode, found once per process and logged once."""
    mode = detect_spawn_mode()
    _log.info("game processes: %s", mode.reason)
    return mode
