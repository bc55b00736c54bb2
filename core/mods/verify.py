"""Did the server load its mods? The "List of mods" table the game prints as it starts.

The dedicated server writes, early in its log (stdout on Linux, the RPT on Windows), a
table framed by `=` rules, headed `List of mods`, with a row per loaded mod or DLC:

    ===================== List of mods =====================
    modsReadOnly = true
    ...
                  name |         modDir |  default | origin | hash | hashShort | fullPath
    --------------------------------------------------------------------------------
                CBA_A3 | modset/@cba_a3 |    false | GAME DIR | ... | ... | /srv/a/modset/@cba_a3
    ==========================================================

(The table's shape is inferred from public RPT captures, not from the reference; a build
that prints `modDir` as the bare folder name or as a full path is matched the same way.)
A mod of the set is loaded when a row's `modDir` or `fullPath` ends with its folder name
(`@cba_a3`), compared without case. Lines may carry the log's time stamp in front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["LIST_TITLE", "LoadedMod", "ModListReader", "check_loaded"]

LIST_TITLE = "List of mods"
_RULE = re.compile(r"^[^=|]*={10,}\s*$")
"""The closing rule, after an optional time stamp (`12:34:56 =====...`)."""
_STAMP = re.compile(r"^(?:\d{4}/\d{2}/\d{2},?\s*)?\d{1,2}:\d{2}:\d{2}\s+")
"""The log's time stamp in front of a row's first cell (`short` or `full` format)."""
MAX_ROWS = 1000


@dataclass(frozen=True, slots=True)
class LoadedMod:
    name: str
    mod_dir: str
    full_path: str

    def folder(self) -> str:
        """The last path component of `modDir` (else of `fullPath`), in lower case."""
        for text in (self.mod_dir, self.full_path):
            last = re.split(r"[\\/]", text.strip().rstrip("\\/"))[-1]
            if last:
                return last.lower()
        return ""


@dataclass
class ModListReader:
    """Fed the game's log lines in order; `done` once a whole table was read."""

    rows: list[LoadedMod] = field(default_factory=list)
    seen: bool = False
    """The title line was read."""
    done: bool = False
    _columns: list[str] | None = None

    def feed(self, lines: Iterable[str]) -> None:
        for line in lines:
            if self.done:
                return
            self._line(line)

    def _line(self, line: str) -> None:
        if not self.seen:
            if LIST_TITLE in line and "=" in line:
                self.seen = True
            return
        if self._columns is None:
            cells = [cell.strip() for cell in line.split("|")]
            if len(cells) >= 3 and "modDir" in cells:
                self._columns = [cell.split()[-1] if cell else cell for cell in cells]
            elif _RULE.match(line):
                self.done = True  # a table without a header: nothing loaded
            return
        if _RULE.match(line):
            self.done = True
            return
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) < len(self._columns) or set(line.strip()) <= {"-", " "}:
            return  # the rule under the header, or a line that is not a row
        names = dict(zip(self._columns, cells, strict=False))
        if len(self.rows) < MAX_ROWS:
            name = _STAMP.sub("", cells[0]).strip()
            self.rows.append(
                LoadedMod(name, names.get("modDir", ""), names.get("fullPath", cells[-1]))
            )


def check_loaded(
    rows: Sequence[LoadedMod], expected: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(loaded, missing) of the expected mod paths (`modset/@cba_a3`), in their order."""
    folders = {row.folder() for row in rows}
    loaded: list[str] = []
    missing: list[str] = []
    for path in expected:
        folder = re.split(r"[\\/]", path.rstrip("\\/"))[-1].lower()
        (loaded if folder in folders else missing).append(path)
    return tuple(loaded), tuple(missing)
