"""The Arma 3 Launcher preset parser (reference §3), including hostile files."""

from __future__ import annotations

import time

import pytest

from core.errors import InvalidInput
from core.mods.preset import MAX_PRESET_BYTES, MAX_ROWS, PresetMod, parse_preset

EXAMPLE = b"""<?xml version="1.0" encoding="utf-8"?>
<html>
  <!--Created by Arma 3 Launcher: https://arma3.com-->
  <head><meta name="arma:Type" content="preset" /><meta name="arma:PresetName" content="Ops &amp; Training" /></head>
  <body>
    <div class="mod-list"><table>
      <tr data-type="ModContainer"><td data-type="DisplayName">CBA_A3</td>
        <td><span class="from-steam">Steam</span></td>
        <td><a href="https://steamcommunity.com/sharedfiles/filedetails/?id=450814997" data-type="Link">https://steamcommunity.com/sharedfiles/filedetails/?id=450814997</a></td></tr>
      <tr data-type="ModContainer"><td data-type="DisplayName">ace &amp; friends</td>
        <td><span class="from-steam">Steam</span></td>
        <td><a href="http://steamcommunity.com/sharedfiles/filedetails/?id=463939057" data-type="Link">link</a></td></tr>
      <tr data-type="ModContainer"><td data-type="DisplayName">@unit_local</td>
        <td><span class="from-local">Local</span></td>
        <td><span class="whups" data-type="Link" data-meta="local:@unit_local|@unit_local|" /></td></tr>
      <tr data-type="ModContainer"><td data-type="DisplayName">CBA again</td>
        <td><span class="from-steam">Steam</span></td>
        <td><a href="https://steamcommunity.com/sharedfiles/filedetails/?id=450814997" data-type="Link">x</a></td></tr>
    </table></div>
    <div class="dlc-list"><table>
      <tr data-type="DlcContainer"><td data-type="DisplayName">Global Mobilization</td>
        <td><a href="https://store.steampowered.com/app/1042220" data-type="Link">https://store.steampowered.com/app/1042220</a></td></tr>
    </table></div>
  </body>
</html>
"""  # noqa: E501


def test_the_reference_example() -> None:
    preset = parse_preset(EXAMPLE)
    assert preset.name == "Ops & Training"
    assert preset.mods == [PresetMod(450814997, "CBA_A3"), PresetMod(463939057, "ace & friends")]
    assert preset.local == ["@unit_local"]
    assert preset.dlc == [("Global Mobilization", 1042220)]
    assert preset.duplicates == 1


def test_row_order_is_kept() -> None:
    rows = "".join(
        f'<tr data-type="ModContainer"><td data-type="DisplayName">M{i}</td><td>'
        f'<a data-type="Link" href="https://steamcommunity.com/sharedfiles/filedetails/?id={i}">'
        "</a></td></tr>"
        for i in (30, 10, 20)
    )
    preset = parse_preset(f"<html><table>{rows}</table></html>".encode())
    assert [m.item_id for m in preset.mods] == [30, 10, 20]


def test_not_a_preset() -> None:
    with pytest.raises(InvalidInput, match="not an Arma 3 Launcher preset"):
        parse_preset(b"\x89PNG\r\n\x1a\n binary junk")
    with pytest.raises(InvalidInput, match="not an Arma 3"):
        parse_preset(b"<html><body><p>hello</p></body></html>")


def test_too_large_is_refused_unread() -> None:
    with pytest.raises(InvalidInput, match="too large"):
        parse_preset(b" " * (MAX_PRESET_BYTES + 1))


def test_too_many_rows() -> None:
    row = '<tr data-type="ModContainer"><td data-type="DisplayName">x</td></tr>'
    with pytest.raises(InvalidInput, match="more than"):
        parse_preset(("<table>" + row * (MAX_ROWS + 1) + "</table>").encode())


def test_entity_tricks_are_not_expanded() -> None:
    """A DTD with nested entities (the 'billion laughs') is not expanded: the name keeps
    the reference as text, quickly, and no link can be smuggled in through an entity."""
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
        + '<!ENTITY link "https://steamcommunity.com/sharedfiles/filedetails/?id=1">]>'
        + "<!--Created by Arma 3 Launcher-->"
        + '<table><tr data-type="ModContainer"><td data-type="DisplayName">&lol9;</td>'
        + '<td><span class="from-local">Local</span></td></tr>'
        + '<tr data-type="ModContainer"><td data-type="DisplayName">x</td><td>'
        + '<a data-type="Link" href="&link;">x</a></td></tr>'
        + '<tr data-type="ModContainer"><td data-type="DisplayName">&#65;&#x42;&amp;\u202e'
        + "\x07C</td><td>"
        + '<a data-type="Link" href="https://steamcommunity.com/sharedfiles/filedetails/?id=7">'
        + "</a></td></tr></table>"
    ).encode()
    started = time.monotonic()
    preset = parse_preset(laughs)
    assert time.monotonic() - started < 2
    assert [m.item_id for m in preset.mods] == [7]  # "&link;" is not a Workshop link
    assert preset.local == ["&lol9;"]  # left as typed, never expanded
    assert preset.mods[0].name == "AB& C"  # character references decoded once; controls gone


def test_long_names_are_capped() -> None:
    name = "N" * 5000
    html = (
        f'<table><tr data-type="ModContainer"><td data-type="DisplayName">{name}</td><td>'
        '<a data-type="Link" href="https://steamcommunity.com/sharedfiles/filedetails/?id=9">'
        "</a></td></tr></table>"
    )
    preset = parse_preset(html.encode())
    assert preset.mods == [PresetMod(9, "N" * 100)]


def test_other_sites_are_not_workshop_links() -> None:
    html = (
        '<table><tr data-type="ModContainer"><td data-type="DisplayName">evil</td><td>'
        '<a data-type="Link" href="https://evil.example/sharedfiles/filedetails/?id=9">'
        "</a></td></tr></table>"
    )
    preset = parse_preset(html.encode())
    assert preset.mods == []
