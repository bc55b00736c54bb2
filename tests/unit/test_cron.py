"""Cron parsing and next-run times, checked against a minute-by-minute brute force."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.cron import CronSchedule, local_zone, parse_schedule
from core.errors import InvalidInput

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # DST moves the clock by 30 minutes
CHATHAM = ZoneInfo("Pacific/Chatham")  # +12:45 / +13:45
KOLKATA = ZoneInfo("Asia/Kolkata")
ZONES: list[tzinfo] = [UTC, BERLIN, NEW_YORK, LORD_HOWE, CHATHAM, KOLKATA]
MINUTE = timedelta(minutes=1)


def runs(schedule: CronSchedule, start: datetime, count: int) -> list[datetime]:
    """In UTC: aware local times at an ambiguous hour never equal another zone's (PEP 495)."""
    out = []
    for run in schedule.runs(start):
        out.append(run.astimezone(UTC))
        if len(out) == count:
            return out
    raise AssertionError("unreachable")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- fields ------------------------------------------------------------------------------


def test_daily_time() -> None:
    schedule = parse_schedule("6:00", UTC)
    assert schedule.text == "06:00" and schedule.describe() == "daily at 06:00"
    assert runs(schedule, utc(2024, 5, 1, 6, 0), 2) == [utc(2024, 5, 2, 6), utc(2024, 5, 3, 6)]
    assert schedule.next_after(utc(2024, 5, 1, 5, 59, 59)) == utc(2024, 5, 1, 6)
    assert schedule.next_after(utc(2024, 5, 1, 5, 59, 59)).tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "field", "values"),
    [
        ("*/15 * * * *", "minutes", (0, 15, 30, 45)),
        ("5/20 * * * *", "minutes", (5, 25, 45)),
        ("10-14 * * * *", "minutes", (10, 11, 12, 13, 14)),
        ("0-30/10,59 * * * *", "minutes", (0, 10, 20, 30, 59)),
        ("0 */6 * * *", "hours", frozenset({0, 6, 12, 18})),
        ("0 22-23,0-2 * * *", "hours", frozenset({22, 23, 0, 1, 2})),
        ("0 0 1,15 * *", "days", frozenset({1, 15})),
        ("0 0 * jan,JUL-sep *", "months", frozenset({1, 7, 8, 9})),
        ("0 0 * * 0", "weekdays", frozenset({0})),
        ("0 0 * * 7", "weekdays", frozenset({0})),
        ("0 0 * * 5-7", "weekdays", frozenset({5, 6, 0})),
        ("0 0 * * mon-fri", "weekdays", frozenset({1, 2, 3, 4, 5})),
        ("0 0 * * */2", "weekdays", frozenset({0, 2, 4, 6})),
    ],
)
def test_fields(text: str, field: str, values: object) -> None:
    assert getattr(parse_schedule(text, UTC), field) == values


def test_every_six_hours_and_weekdays() -> None:
    schedule = parse_schedule("0 */6 * * *", UTC)
    assert runs(schedule, utc(2024, 5, 1, 5, 0), 3) == [
        utc(2024, 5, 1, 6),
        utc(2024, 5, 1, 12),
        utc(2024, 5, 1, 18),
    ]
    weekdays = parse_schedule("30 4 * * 1-5", UTC)  # 2024-05-03 is a Friday
    assert runs(weekdays, utc(2024, 5, 3, 5, 0), 2) == [
        utc(2024, 5, 6, 4, 30),
        utc(2024, 5, 7, 4, 30),
    ]


def test_month_and_year_rollover() -> None:
    schedule = parse_schedule("0 0 31 * *", UTC)
    assert runs(schedule, utc(2024, 1, 31, 0, 0), 3) == [
        utc(2024, 3, 31),
        utc(2024, 5, 31),
        utc(2024, 7, 31),
    ]
    leap = parse_schedule("0 12 29 2 *", UTC)
    assert leap.next_after(utc(2024, 3, 1)) == utc(2028, 2, 29, 12)
    assert parse_schedule("0 0 1 1 *", UTC).next_after(utc(2024, 12, 31, 23, 59)) == utc(2025, 1, 1)


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    # both restricted: the 13th OR any Friday (2024-09-06 is a Friday)
    either = parse_schedule("0 0 13 * 5", UTC)
    assert runs(either, utc(2024, 9, 1), 4) == [
        utc(2024, 9, 6),
        utc(2024, 9, 13),  # a Friday and the 13th: once
        utc(2024, 9, 20),
        utc(2024, 9, 27),
    ]
    # a field starting with `*` is unrestricted (Vixie cron): the day must match both
    both = parse_schedule("0 0 */2 * 5", UTC)  # odd days that are Fridays
    assert runs(both, utc(2024, 9, 1), 2) == [utc(2024, 9, 13), utc(2024, 9, 27)]
    only_dom = parse_schedule("0 0 13 * *", UTC)
    assert only_dom.next_after(utc(2024, 9, 1)) == utc(2024, 9, 13)


def test_rare_schedules_are_found() -> None:
    # Feb 29 that is also a Sunday, Wednesday or Saturday (AND rule): 2032 after 2024
    rare = parse_schedule("0 0 29 2 */3", UTC)
    assert rare.next_after(utc(2024, 3, 1)) == utc(2032, 2, 29)


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "daily time"),
        ("   ", "daily time"),
        ("0 0 * *", "got 4 fields"),
        ("0 0 * * * *", "got 6 fields"),
        ("60 * * * *", "0-59; 60 is out of range"),
        ("0 24 * * *", "0-23; 24"),
        ("0 0 0 * *", "1-31; 0"),
        ("0 0 32 * *", "1-31; 32"),
        ("0 0 * 13 *", "1-12; 13"),
        ("0 0 * * 8", "0-7; 8"),
        ("*/0 * * * *", "at least 1"),
        ("*/90 * * * *", "larger than the minute field's range"),
        ("*/x * * * *", "whole number"),
        ("30-10 * * * *", "goes backwards"),
        ("1,,2 * * * *", "empty item"),
        ("a * * * *", "not a number"),
        ("0 0 * foo *", "not a number or a name like `jan`"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 30,31 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("25:00", "not a time of day"),
        ("12:60", "not a time of day"),
        ("6:0", "daily time"),
        ("@daily", "daily time"),
        ("0 " * 60, "at most 100 characters"),
        ("-1 * * * *", "not a number"),
        ("99999 * * * *", "0-59; 99999 is out of range"),
        # cronsim's extensions are kept out: they would not mean the same in a crontab
        ("0 0 L * *", "`L` in the day-of-month field is not a number"),
        ("0 0 LW * *", "`LW` in the day-of-month field is not a number"),
        ("0 0 * * 5L", "`5L` in the day-of-week field is not a number"),
        ("0 0 * * 1#2", "`1#2` in the day-of-week field is not a number"),
        ("0 0 * * mon#1", "not a number or a name like `sun`"),
        ("0 0 0 * * *", "got 6 fields"),
    ],
)
def test_refusals_say_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_schedule(text, UTC)
    assert says in str(info.value)


def test_refusals_carry_a_template_and_fields() -> None:
    """The front end translates the template; the English must not hide in a field."""
    with pytest.raises(InvalidInput) as info:
        parse_schedule("0 0 * foo *", UTC)
    assert info.value.template == (
        "`{item}` in the {name} field is not a number or a name like `{example}`"
    )
    assert info.value.params == {"item": "foo", "name": "month", "example": "jan"}
    with pytest.raises(InvalidInput) as info:
        parse_schedule("0 0 * *", UTC)
    assert info.value.params == {"n_parts": 4}


def test_a_copy_in_another_zone_recomputes_its_runs() -> None:
    """The scheduler probes gaps on a copy in UTC (`dataclasses.replace`)."""
    berlin = parse_schedule("0 6 * * mon-fri", BERLIN)
    copy = dataclasses.replace(berlin, tz=UTC)
    assert copy == berlin  # the zone is not part of equality
    start = utc(2024, 5, 3, 12)  # a Friday
    assert berlin.next_after(start) == utc(2024, 5, 6, 4)  # 06:00 CEST
    assert copy.next_after(start) == utc(2024, 5, 6, 6)
    assert copy.matches(datetime(2024, 5, 6, 6, 0)) and not copy.matches(datetime(2024, 5, 5, 6))


def test_next_after_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_schedule("06:00", UTC).next_after(datetime(2024, 1, 1))


def test_local_zone_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert local_zone() == BERLIN
    monkeypatch.setenv("TZ", ":America/New_York")
    assert local_zone() == NEW_YORK
    monkeypatch.setenv("TZ", "Not/AZone")
    zone = local_zone()  # falls back to /etc/localtime or a fixed offset
    assert datetime(2024, 1, 1, tzinfo=zone).utcoffset() is not None
    assert parse_schedule("06:00").tz is not None


# -- daylight saving -------------------------------------------------------------------------


def test_a_nonexistent_time_fires_when_the_clocks_jump() -> None:
    # Berlin, 2024-03-31: 02:00 CET becomes 03:00 CEST (01:00 UTC)
    daily = parse_schedule("30 2 * * *", BERLIN)
    first, second = runs(daily, datetime(2024, 3, 30, 12, tzinfo=BERLIN), 2)
    assert first == utc(2024, 3, 31, 1, 0)  # 03:00 CEST, the moment the clocks jump
    assert daily.next_after(first).tzinfo is BERLIN
    assert first.astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"
    assert second.astimezone(BERLIN).strftime("%d %H:%M") == "01 02:30"
    # every matching minute inside the gap collapses into that one instant
    quarter = parse_schedule("*/15 * * * *", BERLIN)
    got = runs(quarter, datetime(2024, 3, 31, 1, 40, tzinfo=BERLIN), 3)
    assert [r.astimezone(BERLIN).strftime("%H:%M") for r in got] == ["01:45", "03:00", "03:15"]
    assert got[1] == utc(2024, 3, 31, 1, 0)


def test_a_repeated_time_fires_once() -> None:
    # Berlin, 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice
    daily = parse_schedule("30 2 * * *", BERLIN)
    got = runs(daily, datetime(2024, 10, 26, 12, tzinfo=BERLIN), 2)
    assert got[0] == utc(2024, 10, 27, 0, 30)  # the first 02:30 (CEST)
    assert got[1] == utc(2024, 10, 28, 1, 30)  # the next day; not the second 02:30
    half = parse_schedule("*/30 * * * *", BERLIN)
    got = runs(half, datetime(2024, 10, 27, 1, 45, tzinfo=BERLIN), 4)
    assert [r.astimezone(UTC).strftime("%H:%M") for r in got] == [
        "00:00",  # 02:00 CEST
        "00:30",  # 02:30 CEST
        "02:00",  # 03:00 CET: the repeated 02:00 and 02:30 (CET) do not fire again
        "02:30",
    ]
    # asked from inside the repeated hour, the first pass is already over
    inside = datetime(2024, 10, 27, 2, 10, fold=1, tzinfo=BERLIN)  # 01:10 UTC
    assert half.next_after(inside).astimezone(UTC) == utc(2024, 10, 27, 2, 0)


def test_daily_restart_keeps_its_local_time_across_dst() -> None:
    daily = parse_schedule("06:00", NEW_YORK)
    got = runs(daily, datetime(2024, 3, 9, 5, tzinfo=NEW_YORK), 2)
    assert [r.astimezone(UTC).hour for r in got] == [11, 10]  # EST, then EDT
    assert [r.astimezone(NEW_YORK).hour for r in got] == [6, 6]
    assert got[1] - got[0] == timedelta(hours=23)


# -- properties: against a brute force ----------------------------------------------------------


def reference_day(schedule: CronSchedule, day: date) -> bool:
    """The day rule written again, independently of CronSchedule.day_matches."""
    if day.month not in schedule.months:
        return False
    dom = day.day in schedule.days
    dow = day.isoweekday() % 7 in schedule.weekdays
    return (dom and dow) if (schedule.dom_star or schedule.dow_star) else (dom or dow)


def reference_matches(schedule: CronSchedule, wall: datetime) -> bool:
    return (
        reference_day(schedule, wall.date())
        and wall.hour in schedule.hours
        and wall.minute in schedule.minutes
    )


def brute_force(schedule: CronSchedule, moment: datetime, limit: int) -> datetime | None:
    """Walk real minutes: the first one whose local time matches (the second pass of a
    repeated hour excluded), or the end of a DST gap that swallowed a match."""
    tz = schedule.tz
    t = moment.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    previous = (t - MINUTE).astimezone(tz).replace(tzinfo=None)
    for _ in range(limit):
        local = t.astimezone(tz)
        wall = local.replace(tzinfo=None, fold=0)
        skipped = previous + MINUTE
        while skipped < wall:  # the clocks jumped: were any of the skipped minutes due?
            if reference_matches(schedule, skipped):
                return t
            skipped += MINUTE
        repeated = local.fold == 1 and (
            local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()
        )
        if reference_matches(schedule, wall) and not repeated:
            return t
        previous = wall
        t += MINUTE
    return None


def field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    ranges = st.tuples(number, number).map(lambda ab: f"{min(ab)}-{max(ab)}")
    steps = st.integers(1, high - low)
    item = st.one_of(
        number.map(str),
        ranges,
        st.builds(lambda r, s: f"{r}/{s}", ranges, steps),
        st.builds(lambda n, s: f"{n}/{s}", number, steps),
    )
    listed = st.lists(item, min_size=1, max_size=3).map(",".join)
    star = st.one_of(st.just("*"), steps.map(lambda s: f"*/{s}"))
    return st.one_of(star, star, listed)


expressions = st.builds(
    lambda *parts: " ".join(parts),
    field(0, 59),
    field(0, 23),
    field(1, 31),
    field(1, 12),
    field(0, 7),
)
night_expressions = st.builds(
    lambda minute, hours: f"{minute} {','.join(map(str, sorted(hours)))} * * *",
    field(0, 59),
    st.sets(st.integers(0, 4), min_size=1),
)
"""Hours around the DST changes of the zones below, so gaps and repeats are hit often."""
moments = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2036, 12, 1))
WINDOW = 3 * 24 * 60


def parsed(text: str, tz: tzinfo) -> CronSchedule:
    try:
        return parse_schedule(text, tz)
    except InvalidInput as exc:
        assume("never fires" not in str(exc))
        raise


def check_against_brute_force(schedule: CronSchedule, moment: datetime) -> None:
    got = schedule.next_after(moment).astimezone(UTC)
    assert got > moment, "strictly after"
    local = got.astimezone(schedule.tz)
    before = (got - MINUTE).astimezone(schedule.tz).replace(tzinfo=None)
    jumped = before + MINUTE != local.replace(tzinfo=None)
    assert reference_matches(schedule, local) or jumped, "matches, or ends a DST gap"
    expected = brute_force(schedule, moment, WINDOW)
    if expected is not None:
        assert got == expected
        return
    # beyond the window: no day in between may match, and the day itself is walked in full
    assert got - moment > timedelta(minutes=WINDOW - 1)
    day = (moment + timedelta(minutes=WINDOW)).astimezone(schedule.tz).date() + timedelta(days=1)
    while day < local.date():
        assert not reference_day(schedule, day), f"{day} matches but was skipped"
        day += timedelta(days=1)
    midnight = datetime(local.year, local.month, local.day, tzinfo=schedule.tz)
    assert brute_force(schedule, midnight - MINUTE, 24 * 60 + 60) == got


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=expressions, moment=moments, tz=st.sampled_from(ZONES))
def test_next_after_is_the_earliest_matching_minute(
    text: str, moment: datetime, tz: tzinfo
) -> None:
    schedule = parsed(text, tz)
    check_against_brute_force(schedule, moment.replace(tzinfo=UTC))


TRANSITIONS: list[tuple[tzinfo, datetime]] = [
    (BERLIN, utc(2024, 3, 31, 1, 0)),  # 02:00 -> 03:00
    (BERLIN, utc(2024, 10, 27, 1, 0)),  # 03:00 -> 02:00
    (NEW_YORK, utc(2024, 3, 10, 7, 0)),
    (NEW_YORK, utc(2024, 11, 3, 6, 0)),
    (LORD_HOWE, utc(2024, 4, 6, 15, 0)),  # 02:00 -> 01:30
    (LORD_HOWE, utc(2024, 10, 5, 15, 30)),  # 02:00 -> 02:30
    (CHATHAM, utc(2024, 4, 6, 14, 0)),  # 03:45 -> 02:45
    (CHATHAM, utc(2024, 9, 28, 14, 0)),  # 02:45 -> 03:45
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(expressions, night_expressions, night_expressions),
    change=st.sampled_from(TRANSITIONS),
    offset=st.integers(-150, 60),
    seconds=st.integers(0, 59),
)
def test_next_after_around_dst_changes(
    text: str, change: tuple[tzinfo, datetime], offset: int, seconds: int
) -> None:
    tz, transition = change
    schedule = parsed(text, tz)
    moment = transition + timedelta(minutes=offset, seconds=seconds)
    check_against_brute_force(schedule, moment)


@settings(max_examples=60, deadline=None)
@given(
    text=night_expressions,
    change=st.sampled_from(TRANSITIONS),
)
def test_consecutive_runs_never_repeat_an_instant(
    text: str, change: tuple[tzinfo, datetime]
) -> None:
    tz, transition = change
    schedule = parsed(text, tz)
    got = runs(schedule, transition - timedelta(hours=3), 30)
    assert all(a < b for a, b in itertools.pairwise(got))
