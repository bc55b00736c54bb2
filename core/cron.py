"""When a scheduled restart is due: `06:00` (daily) or a five-field cron expression.

Times are wall-clock times in one time zone (the host's, unless told otherwise), so a
daily `06:00` stays at six in the morning across daylight-saving changes. Around a change:

- a local time that does not exist (the clocks jump from 02:00 to 03:00) is moved to the
  first valid instant after the gap, the moment the clocks jump: a daily `02:30` fires at
  03:00 that day, and several matches inside one gap fire there once;
- a local time that happens twice (the clocks go back from 03:00 to 02:00) fires once, at
  its first occurrence; the repeated hour does not fire again.

Day of month and day of week follow Vixie cron (what `crontab -e` does): when both fields
are restricted, a day matching either one fires; when either field starts with `*` (also
`*/2`), a day must match both.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import InvalidInput

__all__ = ["CronSchedule", "local_zone", "parse_schedule"]

_log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
MAX_TEXT = 100
_SEARCH_YEARS = 60
"""How far next_after looks; a schedule that parses fires within 28 years (Feb 29 on a
given weekday), so this bound only guards against a bug looping forever."""
_HELP = (
    "write a daily time like `06:00`, or five cron fields "
    "`minute hour day-of-month month day-of-week` like `0 */6 * * *`"
)
_DAILY = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
"""Most days each month can have (February in a leap year)."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day-of-week", 0, 7, _DAYS, 0),
)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field, and the zone it is read in."""

    text: str
    minutes: tuple[int, ...]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday ... 6 = Saturday (a 7 in the expression is stored as 0)."""
    dom_star: bool
    dow_star: bool
    tz: tzinfo = field(compare=False)

    def describe(self) -> str:
        """`daily at 06:00` for the simple form, else the expression as written."""
        daily = _DAILY.match(self.text)
        if daily:
            return f"daily at {int(daily.group(1)):02d}:{daily.group(2)}"
        return self.text

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom_ok = day.day in self.days
        dow_ok = (day.weekday() + 1) % 7 in self.weekdays
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def matches(self, wall: datetime) -> bool:
        """Whether a local wall-clock time (naive, or aware in this zone) is a firing minute."""
        return (
            self.day_matches(wall.date())
            and wall.hour in self.hours
            and wall.minute in self.minutes
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first firing instant strictly after `moment` (aware), in this schedule's zone.

        Do arithmetic on the result in UTC: Python adds to an aware datetime on its wall clock.
        """
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        after = moment.timestamp()  # aware datetimes in one zone compare by wall time: avoid
        local = moment.astimezone(self.tz)
        wall = local.replace(tzinfo=None, second=0, microsecond=0, fold=0) + MINUTE
        limit = wall + timedelta(days=366 * _SEARCH_YEARS)
        while True:
            wall = self._next_wall(wall, limit)
            instant = _resolve(wall, self.tz)
            if instant.timestamp() > after:
                return instant
            wall += MINUTE  # the first pass of a repeated hour, already behind us

    def runs(self, moment: datetime) -> Iterator[datetime]:
        """Firing instants after `moment`, in order (endless)."""
        while True:
            moment = self.next_after(moment)
            yield moment

    def _next_wall(self, wall: datetime, limit: datetime) -> datetime:
        """The earliest matching naive wall time at or after `wall`."""
        while wall <= limit:
            if wall.month not in self.months:
                year, month = divmod(wall.year * 12 + wall.month, 12)  # the next month
                wall = datetime(year, month + 1, 1)
            elif not self.day_matches(wall.date()):
                wall = datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
            elif wall.hour not in self.hours:
                wall = wall.replace(minute=0) + timedelta(hours=1)
            else:
                later = [m for m in self.minutes if m >= wall.minute]
                if later:
                    return wall.replace(minute=later[0])
                wall = wall.replace(minute=0) + timedelta(hours=1)
        raise ValueError(f"schedule {self.text!r} does not fire within {_SEARCH_YEARS} years")


def _exists(wall: datetime, tz: tzinfo) -> bool:
    utc = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return utc.astimezone(tz).replace(tzinfo=None, fold=0) == wall


def _resolve(wall: datetime, tz: tzinfo) -> datetime:
    """The instant a matching wall time fires: its first occurrence, or the end of its gap."""
    probe = wall
    for _ in range(3 * 24 * 60):  # the longest real gap is a skipped day (Samoa, 2011)
        if _exists(probe, tz):
            return probe.replace(tzinfo=tz, fold=0)
        probe += MINUTE
    raise ValueError(f"{wall:%Y-%m-%d %H:%M} is in an implausibly long time-zone gap")


# -- parsing -------------------------------------------------------------------------------


def parse_schedule(text: str, tz: tzinfo | None = None) -> CronSchedule:
    """Parse `06:00` or `m h dom mon dow`; raises InvalidInput saying what to fix."""
    value = " ".join(text.split())
    if not value:
        raise InvalidInput(_HELP)
    if len(value) > MAX_TEXT:
        raise InvalidInput(
            "a schedule is at most {MAX_TEXT} characters; {HELP}", MAX_TEXT=MAX_TEXT, HELP=_HELP
        )
    zone = tz or local_zone()
    daily = _DAILY.match(value)
    if daily:
        hour, minute = int(daily.group(1)), int(daily.group(2))
        if hour > 23 or minute > 59:
            raise InvalidInput("`{value}` is not a time of day: use 00:00 to 23:59", value=value)
        return CronSchedule(
            text=f"{hour:02d}:{minute:02d}",
            minutes=(minute,),
            hours=frozenset({hour}),
            days=frozenset(range(1, 32)),
            months=frozenset(range(1, 13)),
            weekdays=frozenset(range(7)),
            dom_star=True,
            dow_star=True,
            tz=zone,
        )
    parts = value.split(" ")
    if len(parts) != 5:
        raise InvalidInput(
            "{HELP} (got {n_parts} field{value})",
            HELP=_HELP,
            n_parts=len(parts),
            value="s" if len(parts) != 1 else "",
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    schedule = CronSchedule(
        text=value,
        minutes=tuple(sorted(minutes)),
        hours=frozenset(hours),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(d % 7 for d in weekdays),
        dom_star=parts[2].startswith("*"),
        dow_star=parts[4].startswith("*"),
        tz=zone,
    )
    if not _ever_fires(schedule):
        raise InvalidInput("`{value}` never fires: no month has such a day", value=value)
    return schedule


def _parse_field(text: str, spec: _Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise InvalidInput(
                "the {name} field `{text}` has an empty item", name=spec.name, text=text
            )
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()):
                raise InvalidInput(
                    "the step in `{item}` ({name}) must be a whole number",
                    item=item,
                    name=spec.name,
                )
            step = int(step_text)
            if step < 1:
                raise InvalidInput(
                    "a step must be at least 1: `{item}` would never fire", item=item
                )
            if step > spec.high - spec.low:
                raise InvalidInput(
                    "the step in `{item}` is larger than the {name} field's range "
                    "({low}-{high}); cron cannot repeat that slowly in one field",
                    item=item,
                    name=spec.name,
                    low=spec.low,
                    high=spec.high,
                )
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, spec, item), _value(last, spec, item)
            if low > high:
                raise InvalidInput(
                    "the range `{base}` ({name}) goes backwards: write it low-high, or as "
                    "two items like `{first}-{high},{low}-{last}`",
                    base=base,
                    name=spec.name,
                    first=first,
                    high=spec.high,
                    low=spec.low,
                    last=last,
                )
        else:
            low = _value(base, spec, item)
            high = spec.high if slash else low  # `5/15` means 5, 20, 35, 50
        values.update(range(low, high + 1, step))
    return values


def _value(token: str, spec: _Field, item: str) -> int:
    lowered = token.lower()
    if spec.names and lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if not (token.isascii() and token.isdigit()):
        names = f" or a name like `{spec.names[0]}`" if spec.names else ""
        raise InvalidInput(
            "`{item}` in the {name} field is not a number{names}",
            item=item,
            name=spec.name,
            names=names,
        )
    number = int(token)  # at most MAX_TEXT digits
    if not spec.low <= number <= spec.high:
        raise InvalidInput(
            "the {name} field takes {low}-{high}; {number} is out of range",
            name=spec.name,
            low=spec.low,
            high=spec.high,
            number=number,
        )
    return number


def _ever_fires(schedule: CronSchedule) -> bool:
    """True when some real date matches; 28 years cover every weekday of every date."""
    if not (schedule.dom_star or schedule.dow_star):
        return True  # either field may match: every month has every weekday
    for year in range(2000, 2028):
        for month in schedule.months:
            for day in schedule.days:
                real = day <= _MONTH_DAYS[month - 1] and (month != 2 or day < 29 or year % 4 == 0)
                if real and schedule.day_matches(date(year, month, day)):
                    return True
    return False


# -- the host's zone -------------------------------------------------------------------------


def local_zone() -> tzinfo:
    """The host's time zone with its DST rules: `TZ`, else /etc/localtime, else a fixed offset.

    `datetime.now().astimezone().tzinfo` alone is a fixed offset that would be an hour off
    after the next DST change, so it is only the last resort (logged).
    """
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            _log.warning("TZ=%r is not a known time zone; using the system zone", name)
    localtime = Path("/etc/localtime")
    try:
        with localtime.open("rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError) as exc:
        _log.warning("cannot read %s (%s); DST changes will not be followed", localtime, exc)
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone
