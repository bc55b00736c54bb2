"""deploy/languard.service: systemd accepts it, and it keeps game servers alive on restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "languard.service"
CHECKOUT = "/opt/languard"


def directives(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of the unit (comments skipped), every value of a repeated key."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_keeps_games_alive_and_runs_the_checkout() -> None:
    unit = directives(UNIT.read_text())
    assert unit["KillMode"] == ["process"], "a restart must not kill the games' processes"
    assert unit["Type"][0] in {"simple", "exec"}
    assert unit["ExecStart"] == [f"{CHECKOUT}/.venv/bin/python -m bot"]
    assert unit["WorkingDirectory"] == [CHECKOUT]
    assert unit["User"] == ["languard"]
    assert unit["EnvironmentFile"] == [f"{CHECKOUT}/.env"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["full"]
    assert "/var/lib/languard" in unit["ReadWritePaths"][0]
    for breaks_games in ("PrivateTmp", "ProtectHome", "MemoryDenyWriteExecute", "PrivateNetwork"):
        assert breaks_games not in unit, f"{breaks_games} would reach the game servers"


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd provides it)")
    # verify checks that ExecStart's program exists: point the unit at a checkout that has one
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "python").symlink_to(sys.executable)
    unit = tmp_path / "languard.service"
    unit.write_text(UNIT.read_text().replace(CHECKOUT, str(checkout)))
    result = subprocess.run(
        [analyze, "verify", str(unit)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    # verify exits 0 even for unknown keys or bad values; it reports them naming the file
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "languard" in line
    ]
    assert result.returncode == 0, result.stderr
    assert complaints == []
