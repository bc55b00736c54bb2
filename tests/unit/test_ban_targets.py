"""Ban targets are parsed and normalised strictly; reasons and messages are made one safe line."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidInput
from core.games.base import BanKind
from core.services.ban_targets import (
    MAX_TEXT,
    BanTarget,
    clean_text,
    normalise_target,
    parse_target,
)
from data.repositories.players import like_escape

GUID = "80a5885ebe2420bab5e158a310fcbc7d"
UUID_DASHED = "069a79f4-44e9-4726-a5be-fca90e38aaf5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GUID, BanTarget(BanKind.GUID, GUID)),
        (GUID.upper(), BanTarget(BanKind.GUID, GUID)),
        (f"  {GUID}\n", BanTarget(BanKind.GUID, GUID)),
        (f"guid:{GUID.upper()}", BanTarget(BanKind.GUID, GUID)),
        (UUID_DASHED.upper(), BanTarget(BanKind.UUID, UUID_DASHED)),
        (f"uuid:{UUID_DASHED.replace('-', '')}", BanTarget(BanKind.UUID, UUID_DASHED)),
        ("UUID:" + UUID_DASHED, BanTarget(BanKind.UUID, UUID_DASHED)),
        ("203.0.113.7", BanTarget(BanKind.IP, "203.0.113.7")),
        ("2001:DB8:0:0::1", BanTarget(BanKind.IP, "2001:db8::1")),
        ("[2001:db8::1]", BanTarget(BanKind.IP, "2001:db8::1")),
        ("::ffff:203.0.113.7", BanTarget(BanKind.IP, "203.0.113.7")),
        ("ip:::1", BanTarget(BanKind.IP, "::1")),
        ("Notch", BanTarget(BanKind.NAME, "Notch")),
        ("a_b", BanTarget(BanKind.NAME, "a_b")),
        ("1234", BanTarget(BanKind.NAME, "1234")),
        ("name:Seventeen_Chars17", None),
        ("name:Dinnerbone", BanTarget(BanKind.NAME, "Dinnerbone")),
    ],
)
def test_targets_are_recognised_and_normalised(text: str, expected: BanTarget | None) -> None:
    if expected is None:
        with pytest.raises(InvalidInput, match="3 to 16"):
            parse_target(text)
    else:
        assert parse_target(text) == expected


def test_32_hex_is_a_uuid_where_the_game_only_knows_uuids() -> None:
    assert parse_target(GUID, hex_as=BanKind.UUID) == BanTarget(
        BanKind.UUID, "80a5885e-be24-20ba-b5e1-58a310fcbc7d"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "ab",  # too short for a name
        "x" * 17,
        "g" * 32,  # 32 chars, not hex
        GUID + "0",
        "203.0.113.7:2302",  # a port
        "203.0.113.0/24",  # a range
        "0.0.0.0",
        "::",
        "fe80::1%eth0",
        "256.1.1.1",
        "name with space",
        "@everyone",
        "'; DROP TABLE bans; --",
        "a" * 100,
        "guid:xyz",
        "uuid:1234",
        "ip:example.com",
    ],
)
def test_garbage_is_refused_with_a_helpful_message(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_target(text)
    message = str(info.value)
    assert any(word in message for word in ("GUID", "UUID", "IP", "name"))


def test_normalise_target_per_kind() -> None:
    assert normalise_target(BanKind.GUID, GUID.upper()) == GUID
    assert normalise_target(BanKind.UUID, UUID_DASHED.replace("-", "")) == UUID_DASHED
    assert normalise_target(BanKind.NAME, "Steve") == "Steve"
    with pytest.raises(InvalidInput, match="32 hexadecimal"):
        normalise_target(BanKind.GUID, UUID_DASHED)
    with pytest.raises(InvalidInput, match="IP address"):
        normalise_target(BanKind.IP, "10.0.0.1:25565")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("griefing", "griefing"),
        ("  team\nkill\r\n x\t2 ", "team kill x 2"),
        ("a\x00b\x1bc\x7f", "a b c"),
        ("zero\u200bwidth\u202eflip", "zerowidthflip"),
        ("line\u2028sep", "line sep"),
        ("Максим 🎮 `code` @everyone", "Максим 🎮 `code` @everyone"),
        ("\n\n", ""),
    ],
)
def test_clean_text_makes_one_plain_line(text: str, expected: str) -> None:
    assert clean_text(text) == expected


def test_clean_text_caps_the_length() -> None:
    assert len(clean_text("x" * 1000)) == MAX_TEXT
    assert clean_text("abc def", limit=4) == "abc"


@given(st.text(max_size=400))
def test_clean_text_never_leaves_control_characters(text: str) -> None:
    cleaned = clean_text(text)
    assert len(cleaned) <= MAX_TEXT
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert not any(unicodedata.category(c).startswith("C") for c in cleaned)
    assert clean_text(cleaned) == cleaned


@pytest.mark.parametrize(
    ("text", "expected"),
    [("50%_off", "50\\%\\_off"), ("a\\b", "a\\\\b"), ("plain", "plain")],
)
def test_like_patterns_are_escaped(text: str, expected: str) -> None:
    assert like_escape(text) == expected
