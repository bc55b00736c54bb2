from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.games.mission_names import mission_template, mission_terrain, validate_mission_filename
from core.games.pbo import COMPRESSED_METHOD, MAX_ENTRIES, PboError, read_pbo, read_pbo_bytes
from tests.fakes.pbo_factory import PboFile, build_pbo, mission_pbo, padded_mission_pbo


def test_a_valid_mission_is_summarised(tmp_path: Path) -> None:
    data = mission_pbo("co10_Escape")
    path = tmp_path / "co10_Escape.Altis.pbo"
    path.write_bytes(data)
    summary = read_pbo(path)
    assert summary.files == ("description.ext", "init.sqf", "mission.sqm", "scripts\\setup.sqf")
    assert summary.prefix == "co10_Escape"
    assert summary.has_mission_sqm
    assert summary.size == len(data)
    assert summary.data_size == sum(e.data_size for e in summary.entries)
    assert summary.sha256 == hashlib.sha256(data).hexdigest()
    assert summary.sha1 == data[-20:].hex()
    assert read_pbo_bytes(data) == summary


def test_a_compressed_entry_and_no_properties_are_accepted() -> None:
    data = build_pbo(
        [PboFile("mission.sqm", b"xx", method=COMPRESSED_METHOD, original_size=100)],
        properties=(),
    )
    summary = read_pbo_bytes(data)
    assert summary.prefix is None and summary.has_mission_sqm
    assert summary.entries[0].original_size == 100


def test_the_error_is_a_user_facing_invalid_input() -> None:
    assert issubclass(PboError, InvalidInput)


def test_a_large_file_is_read_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.Altis.pbo"
    path.write_bytes(padded_mission_pbo(5 * 1024 * 1024))
    assert read_pbo(path).size > 5 * 1024 * 1024 - 100


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"class Mission { version = 54; };\n" * 20, "not a PBO"),
        (b"PK\x03\x04" + b"\0" * 200, "not a PBO"),
        (b"", "too small"),
        (build_pbo([("mission.sqm", b"x")], product=False), "not a PBO"),
        (build_pbo([("mission.sqm", b"x")], product_method=0x12345678), "not a PBO"),
    ],
    ids=["text", "zip", "empty", "no-product-entry", "wrong-product-method"],
)
def test_things_that_are_not_pbos(data: bytes, reason: str) -> None:
    with pytest.raises(PboError, match=reason):
        read_pbo_bytes(data)


def test_a_text_file_named_pbo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.Altis.pbo"
    path.write_text("just some text that someone renamed\n" * 100)
    with pytest.raises(PboError, match="not a PBO"):
        read_pbo(path)


def test_a_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(PboError, match="could not be read"):
        read_pbo(tmp_path / "nope.pbo")


@pytest.mark.parametrize("cut", [1, 20, 21, 50, 200])
def test_truncated_files_are_refused(cut: int) -> None:
    data = mission_pbo()
    with pytest.raises(PboError, match=r"truncated|not a valid PBO"):
        read_pbo_bytes(data[: len(data) - cut])


def test_truncation_names_the_cause() -> None:
    data = mission_pbo()
    with pytest.raises(PboError, match="truncated"):
        read_pbo_bytes(data[:-30])


def test_a_wrong_sha1_is_refused() -> None:
    with pytest.raises(PboError, match="SHA-1"):
        read_pbo_bytes(build_pbo([("mission.sqm", b"x")], sha1=b"\x01" * 20))


def test_a_flipped_data_byte_is_caught_by_the_sha1() -> None:
    data = bytearray(mission_pbo())
    data[-30] ^= 0xFF
    with pytest.raises(PboError, match="SHA-1"):
        read_pbo_bytes(bytes(data))


def test_a_missing_trailer_marker_is_refused() -> None:
    with pytest.raises(PboError, match="trailer"):
        read_pbo_bytes(build_pbo([("mission.sqm", b"x")], trailer_byte=b"\x01"))


def test_no_trailer_at_all_is_refused() -> None:
    with pytest.raises(PboError, match="truncated"):
        read_pbo_bytes(build_pbo([("mission.sqm", b"x" * 40)], trailer=False))


@pytest.mark.parametrize("after", [b"\0", b"garbage", b"\0" * 21])
def test_trailing_garbage_is_refused(after: bytes) -> None:
    with pytest.raises(PboError, match="after its checksum"):
        read_pbo_bytes(build_pbo([("mission.sqm", b"x")], after=after))


@pytest.mark.parametrize(
    "name",
    [
        b"..\\..\\evil.sqf",
        b"scripts\\..\\..\\evil.sqf",
        b"../evil.sqf",
        b"\\windows\\evil.sqf",
        b"/etc/passwd",
        b"C:\\evil.sqf",
        b"a\\\\b.sqf",
        b"scripts\\",
        b".\\x.sqf",
        b"evil\x01.sqf",
        b"evil\x1b[31m.sqf",
        b"file::$DATA",
    ],
)
def test_hostile_names_inside_the_archive_are_refused(name: bytes) -> None:
    data = build_pbo([("mission.sqm", b"x"), (name, b"y")])
    with pytest.raises(PboError, match=r"refused|control characters"):
        read_pbo_bytes(data)


def test_a_nul_inside_a_name_cannot_smuggle_a_file() -> None:
    # a NUL ends the name early, so the rest is read as fields and the layout breaks
    data = build_pbo([("mission.sqm", b"x"), (b"ok.sqf\0../../evil", b"y")])
    with pytest.raises(PboError):
        read_pbo_bytes(data)


def test_duplicate_names_are_refused_case_insensitively() -> None:
    data = build_pbo([("mission.sqm", b"x"), ("MISSION.SQM", b"y")])
    with pytest.raises(PboError, match="twice"):
        read_pbo_bytes(data)


def test_an_absurd_data_size_is_refused_before_hashing() -> None:
    data = build_pbo([PboFile("mission.sqm", b"x", data_size=0xFFFFFFFF)])
    with pytest.raises(PboError, match="more than the whole file"):
        read_pbo_bytes(data)


def test_an_unknown_packing_method_is_refused() -> None:
    data = build_pbo([PboFile("mission.sqm", b"x", method=0x456E6372)])
    with pytest.raises(PboError, match="packing method"):
        read_pbo_bytes(data)


def test_a_second_product_entry_is_refused() -> None:
    data = build_pbo([PboFile("mission.sqm", b"x", method=0x56657273)])
    with pytest.raises(PboError, match="packing method"):
        read_pbo_bytes(data)


def test_a_non_empty_terminator_is_refused() -> None:
    terminator = b"\0" + struct.pack("<5I", 0, 0, 0, 0, 5)
    data = build_pbo([("mission.sqm", b"x")], terminator=terminator)
    with pytest.raises(PboError, match="terminator"):
        read_pbo_bytes(data)


def test_an_overlong_name_is_refused() -> None:
    data = build_pbo([("mission.sqm", b"x"), ("a" * 600, b"y")])
    with pytest.raises(PboError, match="longer than"):
        read_pbo_bytes(data)


def test_too_many_properties_are_refused() -> None:
    props = tuple((f"k{i}", "v") for i in range(100))
    with pytest.raises(PboError, match="properties"):
        read_pbo_bytes(build_pbo([("mission.sqm", b"x")], properties=props))


def test_an_absurd_entry_count_is_refused() -> None:
    files = [(f"f{i}", b"") for i in range(MAX_ENTRIES + 1)]
    with pytest.raises(PboError, match="more than"):
        read_pbo_bytes(build_pbo(files))


def test_a_header_without_an_end_is_refused() -> None:
    # entries that never terminate: the header runs into the end of the file
    entries = b"".join(b"x%d.sqf\0" % i + struct.pack("<5I", 0, 0, 0, 0, 0) for i in range(50))
    data = b"\0" + struct.pack("<5I", 0x56657273, 0, 0, 0, 0) + b"\0" + entries
    with pytest.raises(PboError, match=r"truncated|does not end"):
        read_pbo_bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_summary_or_the_typed_error(data: bytes) -> None:
    try:
        read_pbo_bytes(data)
    except PboError as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_corruption_of_a_valid_pbo_gives_the_typed_error(data: st.DataObject) -> None:
    original = mission_pbo()
    position = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[position]))
    corrupt = bytearray(original)
    corrupt[position] = value
    with pytest.raises(PboError):
        read_pbo_bytes(bytes(corrupt))


_names = st.lists(
    st.from_regex(r"[A-Za-z0-9_]{1,12}(\\[A-Za-z0-9_]{1,12}){0,2}\.[a-z]{1,4}", fullmatch=True),
    min_size=0,
    max_size=12,
    unique_by=lambda name: name.casefold(),
)


@settings(max_examples=150, deadline=None)
@given(
    names=_names,
    payload=st.binary(max_size=200),
    prefix=st.from_regex(r"[A-Za-z0-9_\\]{0,30}", fullmatch=True),
)
def test_a_built_pbo_round_trips(names: list[str], payload: bytes, prefix: str) -> None:
    files = [(name, payload + str(i).encode()) for i, name in enumerate(names)]
    data = build_pbo(files, properties=(("prefix", prefix),))
    summary = read_pbo_bytes(data)
    assert summary.files == tuple(names)
    assert summary.prefix == prefix
    assert summary.data_size == sum(len(content) for _, content in files)
    assert summary.size == len(data)
    assert summary.has_mission_sqm == any(n.lower() == "mission.sqm" for n in names)


@pytest.mark.parametrize(
    ("given", "stored", "terrain"),
    [
        ("co10_Escape.Altis.pbo", "co10_Escape.Altis.pbo", "Altis"),
        ("MP_Marksmen_01.Altis.PBO", "MP_Marksmen_01.Altis.pbo", "Altis"),
        ("x-y.v1.2.Tanoa.pbo", "x-y.v1.2.Tanoa.pbo", "Tanoa"),
        ("_a.chernarus_2020.pbo", "_a.chernarus_2020.pbo", "chernarus_2020"),
    ],
)
def test_mission_file_names(given: str, stored: str, terrain: str) -> None:
    assert validate_mission_filename(given) == stored
    assert mission_terrain(stored) == terrain
    assert mission_template(stored) == stored[:-4]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "give the mission file name"),
        ("../x.Altis.pbo", "plain name"),
        ("a/b.Altis.pbo", "plain name"),
        ("a\\b.Altis.pbo", "plain name"),
        ("x\x00.Altis.pbo", "control characters"),
        ("\u0445.Altis.pbo", "look-alike"),
        ("x.Altis.zip", r"\.pbo file"),
        ("x.pbo", "missionName.terrainName.pbo"),
        ("x y.Altis.pbo", "no spaces"),
        ("NUL.Altis.pbo", "reserved device name"),
        ("com1.x.Altis.pbo", "reserved device name"),
        ("a" * 121, "longer than"),
    ],
)
def test_bad_mission_file_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        validate_mission_filename(name)
