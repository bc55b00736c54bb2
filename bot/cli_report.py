"""One line per checked item, for the operator's terminal: status, item, detail, and the fix."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Report", "clean"]

_MAX_CHARS = 200


def clean(text: object, limit: int = _MAX_CHARS) -> str:
    """Text from Discord or files, safe to print: no control characters (a name cannot move
    the cursor or recolour the terminal), one line, bounded."""
    out = "".join(
        " " if unicodedata.category(ch).startswith("C") else ch for ch in str(text)
    ).strip()
    return out if len(out) <= limit else out[: limit - 1] + "…"


@dataclass
class Report:
    """Collects the lines of `check`/`resync`; failures decide the exit code."""

    out: Callable[[str], None] = print
    failures: int = 0

    def ok(self, item: str, detail: str) -> None:
        self.out(f"OK   {item}: {detail}")

    def info(self, item: str, detail: str) -> None:
        """Worth knowing, not a failure (e.g. a game that is not configured)."""
        self.out(f"--   {item}: {detail}")

    def fail(self, item: str, problem: str, fix: str) -> None:
        self.failures += 1
        self.out(f"FAIL {item}: {problem}; fix: {fix}")

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0
