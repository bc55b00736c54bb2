"""Arma 3's log of record, one per start: the server's stdout (console.log) or its RPT.

The Linux server (`arma3server`, `arma3server_x64`) writes no RPT at all: its whole log goes
to stdout (LinuxGSM issue 259; arma-server-web-admin issue 17 and PR 174; pelican-eggs/yolks
PR 253). A Windows build (under Wine or Proton) writes an RPT and may also repeat it to
stdout. Tailing both would show every line twice, so each start gets one source:

* console.log is always tailed. On Linux it is the log; whatever a start prints there is
  shown, once.
* A start's RPT is tailed only if that start printed nothing to stdout by the time its RPT
  had held lines for `grace` seconds (a Windows build with a silent stdout). When the start
  does print to stdout, its RPT repeats those lines and is left alone.

A start begins when the profile prepares it: `mark_start()` records how many bytes
console.log had received then and the newest RPT's name then. The choice for the start's
RPT is saved with them (`.languard-log-choice.json`), so a restarted bot keeps it. Cost: a
Windows build with a silent stdout shows its first lines `grace` seconds late.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.fsutil import atomic_write
from core.logs.rotation_state import logical_size

__all__ = ["CHOICE_FILE", "CONSOLE_SOURCE", "RPT_SOURCE", "LogChoice"]

_log = logging.getLogger(__name__)

CHOICE_FILE = ".languard-log-choice.json"
CONSOLE_SOURCE = "console"
RPT_SOURCE = "rpt"


class LogChoice:
    """Locates console.log and, when it is this start's log of record, the RPT."""

    def __init__(
        self,
        folder: Path,
        newest_rpt: Callable[[], Path | None],
        *,
        grace: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console_log = folder / "console.log"
        self._file = folder / CHOICE_FILE
        self._newest_rpt = newest_rpt
        self.grace = grace
        self._clock = clock
        self._state: dict[str, Any] | None = None
        self._first_seen: dict[str, float] = {}

    def mark_start(self) -> None:
        """A start is about to begin (called before the game is spawned)."""
        newest = self._newest_rpt()
        self._first_seen.clear()
        self._save(
            {
                "console_end": logical_size(self.console_log),
                "rpt_before": "" if newest is None else newest.name,
                "rpt": None,
                "choice": None,
            }
        )

    def console(self) -> Path | None:
        return self.console_log if self.console_log.exists() else None

    def rpt(self) -> Path | None:
        """This start's RPT once it is chosen as the log of record, else None."""
        rpt = self._newest_rpt()
        if rpt is None:
            return None
        state = self._state if self._state is not None else self._load()
        if state.get("rpt") == rpt.name and state.get("choice"):
            return rpt if state["choice"] == RPT_SOURCE else None
        if rpt.name <= str(state.get("rpt_before") or ""):
            return None  # an older start's RPT
        if state.get("rpt") != rpt.name:
            state = self._load()  # another start may have been marked since
            if state.get("rpt") == rpt.name and state.get("choice"):
                return rpt if state["choice"] == RPT_SOURCE else None
            state["rpt"], state["choice"] = rpt.name, None
            self._state = state
        if logical_size(self.console_log) > int(state.get("console_end") or 0):
            self._decide(state, CONSOLE_SOURCE)
            return None
        try:
            if rpt.stat().st_size == 0:
                return None
        except FileNotFoundError:
            return None
        first = self._first_seen.setdefault(rpt.name, self._clock())
        if self._clock() - first < self.grace:
            return None
        self._decide(state, RPT_SOURCE)
        return rpt

    def _decide(self, state: dict[str, Any], choice: str) -> None:
        state["choice"] = choice
        _log.info("%s: the log of record for %s is the %s", self._file.parent, state["rpt"], choice)
        self._save(state)

    def _load(self) -> dict[str, Any]:
        """The saved state; without one (a start no Languard marked), stdout from now on."""
        try:
            data = json.loads(self._file.read_bytes())
            if isinstance(data, dict):
                self._state = data
                return data
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            _log.warning("ignoring the unreadable %s: %s", self._file, exc)
        state: dict[str, Any] = {
            "console_end": logical_size(self.console_log),
            "rpt_before": "",
            "rpt": None,
            "choice": None,
        }
        self._state = state
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self._state = state
        try:
            atomic_write(self._file, json.dumps(state).encode(), mode=0o644)
        except OSError as exc:  # the choice still holds for this bot's life
            _log.warning("cannot save %s: %s", self._file, exc)
