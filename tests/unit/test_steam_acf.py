"""The Workshop record (appworkshop_107410.acf): read by braces, repaired when stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.steam import acf

RECORD = """"AppWorkshop"
{
	"appid"		"107410"
	"SizeOnDisk"		"2752787"
	"NeedsUpdate"		"0"
	"NeedsDownload"		"0"
	"TimeLastUpdated"		"0"
	"TimeLastAppRan"		"0"
	"WorkshopItemsInstalled"
	{
		"450814997"
		{
			"size"		"2652787"
			"timeupdated"		"1700000000"
			"manifest"		"1234567890123456789"
		}
		"463939057"
		{
			"size"		"100000"
			"timeupdated"		"1700000100"
			"manifest"		"42"
		}
	}
	"WorkshopItemDetails"
	{
		"450814997"
		{
			"manifest"		"1234567890123456789"
			"timeupdated"		"1700000000"
			"timetouched"		"1700000500"
		}
		"463939057"
		{
			"manifest"		"42"
			"timeupdated"		"1700000100"
			"timetouched"		"1700000600"
		}
	}
}
"""


def install(tmp_path: Path, text: str = RECORD) -> Path:
    path = acf.workshop_acf(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_parse_dump_round_trip() -> None:
    tree = acf.parse_vdf(RECORD)
    assert acf.parse_vdf(acf.dump_vdf(tree)) == tree
    assert acf.dump_vdf(tree) + "\n" == RECORD


def test_parse_escapes_comments_and_conditions() -> None:
    tree = acf.parse_vdf('// c\n"a" { "b" "x\\"y" [$WIN32] "c" { } }')
    assert tree == {"a": {"b": 'x"y', "c": {}}}
    for bad in ('"a" {', '"a" }', '"a"', '"a" "b'):
        with pytest.raises(ValueError):
            acf.parse_vdf(bad)


def test_installed_items(tmp_path: Path) -> None:
    install(tmp_path)
    items = acf.installed_items(tmp_path)
    assert items[450814997] == acf.InstalledItem(
        450814997, 2652787, 1700000000, "1234567890123456789"
    )
    assert set(items) == {450814997, 463939057}
    assert acf.installed_items(tmp_path / "nowhere") == {}


def test_stale_items_are_recorded_without_a_folder(tmp_path: Path) -> None:
    install(tmp_path)
    folder = acf.content_dir(tmp_path, 463939057)
    folder.mkdir(parents=True)
    assert acf.stale_items(tmp_path) == [450814997]
    assert acf.stale_items(tmp_path, [463939057, 999]) == []


def test_forget_items_drops_both_sections_and_size(tmp_path: Path) -> None:
    path = install(tmp_path)
    assert acf.forget_items(tmp_path, [450814997, 777]) == [450814997]
    section = acf.parse_vdf(path.read_text())["AppWorkshop"]
    assert isinstance(section, dict)
    assert section["SizeOnDisk"] == "100000"
    assert list(section["WorkshopItemsInstalled"]) == ["463939057"]  # type: ignore[arg-type]
    assert list(section["WorkshopItemDetails"]) == ["463939057"]  # type: ignore[arg-type]
    assert acf.forget_items(tmp_path, [450814997]) == []


def test_unreadable_record_is_moved_aside(tmp_path: Path) -> None:
    path = install(tmp_path, '"AppWorkshop"\n{\n\t"appid" "107410"\n')
    assert acf.forget_items(tmp_path, [5]) == [5]
    assert not path.exists()
    assert [p.name.split("-")[0] for p in path.parent.iterdir()] == [path.name + ".broken"]
