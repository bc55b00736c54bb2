"""The Arma 3 Launcher's preset HTML → names and Workshop ids, in the Launcher's order.

Reference §3: mods are `tr[data-type=ModContainer]` rows with a `td[data-type=DisplayName]`
and an `a[data-type=Link]` to `http(s)://steamcommunity.com/sharedfiles/filedetails/?id=<id>`
(both schemes occur); local mods have `span.from-local` and no link; DLC rows are
`tr[data-type=DlcContainer]` with a store link. Row order is the load order the Launcher
used; names are HTML-escaped; hand-edited files hold duplicates.

The file is a member's upload, so it is treated as hostile: its size is capped before
parsing, the standard library's tokenizer is used (it defines no entities, so no DTD or
entity-expansion tricks; character references are decoded once, and nothing is fetched),
rows and name lengths are capped, and control characters are dropped from names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from core.errors import InvalidInput
from core.mods.model import parse_workshop_id

__all__ = ["MAX_PRESET_BYTES", "Preset", "PresetMod", "parse_preset"]

MAX_PRESET_BYTES = 2 * 1024 * 1024
"""A preset of 500 mods is ~250 KB; anything above this is refused unread."""
MAX_ROWS = 1000
MAX_NAME = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_STORE = re.compile(r"https?://store\.steampowered\.com/app/([0-9]{1,10})(?:[/?#].*)?", re.I)


@dataclass(frozen=True, slots=True)
class PresetMod:
    item_id: int
    name: str


@dataclass
class Preset:
    name: str = ""
    mods: list[PresetMod] = field(default_factory=list)
    """Workshop mods, in the preset's order, each id once."""
    local: list[str] = field(default_factory=list)
    """Local mods (not on the Workshop): named so the admin knows to add them by hand."""
    dlc: list[tuple[str, int]] = field(default_factory=list)
    """Creator DLC rows (name, Steam app id): these come with the game, not the Workshop."""
    duplicates: int = 0


def _clean(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())[:MAX_NAME]


@dataclass
class _Row:
    kind: str
    name: str = ""
    link: str = ""
    local: bool = False
    in_name: bool = False


class _PresetParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[_Row] = []
        self.row: _Row | None = None
        self.preset_name = ""
        self.launcher = False
        self.too_many = False

    def handle_comment(self, data: str) -> None:
        if "Created by Arma 3 Launcher" in data:
            self.launcher = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key.lower(): value or "" for key, value in attrs}
        kind = found.get("data-type", "")
        if tag == "meta" and found.get("name", "").lower() == "arma:presetname":
            self.preset_name = _clean(found.get("content", ""))
        elif tag == "tr":
            self._close_row()
            if kind in {"ModContainer", "DlcContainer"}:
                if len(self.rows) >= MAX_ROWS:
                    self.too_many = True
                    return
                self.row = _Row(kind)
        elif self.row is None:
            return
        elif tag == "td" and kind == "DisplayName":
            self.row.in_name = True
        elif tag == "td":
            self.row.in_name = False
        elif kind == "Link" and tag == "a" and not self.row.link:
            self.row.link = found.get("href", "")[:500]
        elif tag == "span" and "from-local" in found.get("class", "").split():
            self.row.local = True
        if self.row is not None and found.get("data-meta", "").startswith("local:"):
            self.row.local = True

    def handle_endtag(self, tag: str) -> None:
        if self.row is None:
            return
        if tag == "td":
            self.row.in_name = False
        elif tag in {"tr", "table"}:
            self._close_row()

    def handle_data(self, data: str) -> None:
        if self.row is not None and self.row.in_name and len(self.row.name) < 4 * MAX_NAME:
            self.row.name += data

    def _close_row(self) -> None:
        if self.row is not None:
            self.rows.append(self.row)
            self.row = None


def parse_preset(data: bytes) -> Preset:
    """The mods of a Launcher preset; raises `InvalidInput` for anything else."""
    if len(data) > MAX_PRESET_BYTES:
        raise InvalidInput(
            "that preset is too large ({size} KB; at most {most} KB)",
            size=len(data) // 1024,
            most=MAX_PRESET_BYTES // 1024,
        )
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    parser = _PresetParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError):  # the tokenizer's own refusal of broken markup
        raise InvalidInput("that file is not an Arma 3 Launcher preset (HTML)") from None
    parser._close_row()
    if parser.too_many:
        raise InvalidInput("that preset has more than {most} rows", most=MAX_ROWS)
    if not parser.rows and not parser.launcher:
        raise InvalidInput(
            "that file is not an Arma 3 Launcher preset: export one from the Launcher's "
            "Mods tab (Preset → Export) and upload the .html file"
        )
    preset = Preset(name=parser.preset_name)
    seen: set[int] = set()
    for row in parser.rows:
        name = _clean(row.name)
        if row.kind == "DlcContainer":
            store = _STORE.fullmatch(row.link.strip())
            if store:
                preset.dlc.append((name, int(store.group(1))))
            continue
        item_id = _workshop_id(row.link)
        if item_id is None:
            if row.local or not row.link:
                preset.local.append(name or "?")
            continue
        if item_id in seen:
            preset.duplicates += 1
            continue
        seen.add(item_id)
        preset.mods.append(PresetMod(item_id, name or str(item_id)))
    return preset


def _workshop_id(link: str) -> int | None:
    if not link:
        return None
    try:
        return parse_workshop_id(link)
    except InvalidInput:
        return None
