from __future__ import annotations

import pytest

from core.errors import InvalidInput
from core.parsing import format_duration, parse_duration, parse_minutes_list, parse_switch


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("30m", 1800),
        ("12h", 43200),
        ("7d", 604800),
        ("1h30m", 5400),
        (" 2W ", 1209600),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_permanent_and_off_only_where_allowed() -> None:
    assert parse_duration("perm", allow_permanent=True) is None
    assert parse_duration("off", allow_off=True) == 0
    with pytest.raises(InvalidInput, match="perm"):
        parse_duration("soon", allow_permanent=True)
    with pytest.raises(InvalidInput):
        parse_duration("perm")


@pytest.mark.parametrize(
    "text", ["", "30", "m30", "30x", "1h 2", "²m", "3٣m", "9" * 40 + "m", "-5m"]
)
def test_bad_durations_are_refused_clearly(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_duration_bounds() -> None:
    with pytest.raises(InvalidInput, match="between"):
        parse_duration("1s", minimum=60)


def test_switches() -> None:
    assert parse_switch("ON") is True and parse_switch("off") is False
    with pytest.raises(InvalidInput):
        parse_switch("maybe")


def test_minutes_lists() -> None:
    assert parse_minutes_list("1, 15,5,5") == [15, 5, 1]
    for bad in ["", "0", "x", "²", "1,2,3,4,5,6,7,8,9,10,11", "2000"]:
        with pytest.raises(InvalidInput):
            parse_minutes_list(bad)
