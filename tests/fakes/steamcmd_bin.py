"""Install the fake SteamCMD into a folder the way the real one sits on a host.

Valve's `steamcmd.sh` is a shell script that sets things up and hands over to the real
binary; ours sets the Steam root (its own folder) and `exec`s tests/fakes/fake_steamcmd.py
(a `#!/usr/bin/env python3` script), so the pid the bot spawned is SteamCMD's own. The
folder also holds `control.json` (the knobs, see fake_steamcmd.py), `logs/`, and what the
fake reports: `fake_events.jsonl`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FakeSteamCmd", "install_fake_steamcmd"]

FAKE = Path(__file__).resolve().parent / "fake_steamcmd.py"

_WRAPPER = """#!/bin/sh
# Like Valve's steamcmd.sh: prepare, then hand over to the program (exec keeps the pid).
FAKE_STEAMCMD_ROOT="$(cd "$(dirname "$0")" && pwd)"
export FAKE_STEAMCMD_ROOT
exec "{fake}" "$@"
"""


@dataclass
class FakeSteamCmd:
    root: Path
    control: dict[str, Any] = field(default_factory=dict)

    @property
    def executable(self) -> Path:
        return self.root / "steamcmd.sh"

    def write_control(self) -> None:
        (self.root / "control.json").write_text(json.dumps(self.control))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.root / "fake_events.jsonl"
        if not path.exists():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [row for row in rows if kind is None or row["event"] == kind]

    def workshop_log(self) -> str:
        path = self.root / "logs" / "workshop_log.txt"
        return path.read_text() if path.exists() else ""


def install_fake_steamcmd(root: Path, control: dict[str, Any] | None = None) -> FakeSteamCmd:
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    wrapper = root / "steamcmd.sh"
    wrapper.write_text(_WRAPPER.format(fake=FAKE))
    wrapper.chmod(0o755)
    if not os.access(FAKE, os.X_OK):
        FAKE.chmod(0o755)
    fake = FakeSteamCmd(root, dict(control or {}))
    fake.write_control()
    return fake
