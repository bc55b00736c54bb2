"""When a scheduled restart is due: `06:00` (daily) or a five-field cron expression.

The expression is parsed and walked by `cronsim` (a maintained cron library, the one
Healthchecks.io runs); this module adds what cron itself does not say:

- the `06:00` shorthand, and refusals that say what to fix (cronsim only says "Bad minute");
- only the classic syntax: numbers, names (`jan`, `mon`), `*`, ranges, steps and lists; the
  `L`, `W` and `#` extensions and a seconds field are refused, so what a member writes means
  the same thing in any crontab;
- one rule for daylight-saving changes, for every expression (cronsim only applies its
  Debian-style fix-up to fixed-time jobs, so it is given naive wall-clock times and the
  instants are resolved here).

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

from cronsim import CronSim, CronSimError

from core.errors import InvalidInput

__all__ = ["MAX_TEXT", "CronSchedule", "local_zone", "parse_schedule"]

_log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
MAX_TEXT = 100
_DAILY = re.compile(r"^([0-9]{1,2}):([0-9]{2})$")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_PROBE_START = datetime(2000, 1, 1)
"""Whether a schedule ever fires is asked from here: cronsim looks 50 years ahead, more
than the 28 years after which every date falls on every weekday again."""


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
    _Field("day-of-week", 0, 7, _DAYS),
)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed schedule: the allowed values of each field, and the zone it is read in."""

    text: str
    """What was written, tidied: `06:00`, or the five fields separated by single spaces."""
    expression: str
    """The five-field form cronsim reads (`0 6 * * *` for `06:00`)."""
    minutes: tuple[int, ...]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday ... 6 = Saturday (a 7 in the expression is stored as 0)."""
    dom_star: bool
    dow_star: bool
    tz: tzinfo = field(compare=False)
    _sim: CronSim = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sim", CronSim(self.expression, _PROBE_START))

    def describe(self) -> str:
        """`daily at 06:00` for the simple form, else the expression as written."""
        daily = _DAILY.match(self.text)
        if daily:
            return f"daily at {int(daily.group(1)):02d}:{daily.group(2)}"
        return self.text

    def day_matches(self, day: date) -> bool:
        return day.month in self.months and self._sim.match_day(day)

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
        local = moment.astimezone(self.tz).replace(tzinfo=None, second=0, microsecond=0, fold=0)
        # naive wall times: cronsim walks the calendar, the zone's rules are applied below
        for wall in CronSim(self.expression, local):
            instant = _resolve(wall, self.tz)
            if instant.timestamp() > after:
                return instant
            # else: the first pass of a repeated hour, already behind us
        raise ValueError(f"schedule {self.text!r} does not fire within 50 years")

    def runs(self, moment: datetime) -> Iterator[datetime]:
        """Firing instants after `moment`, in order (endless)."""
        while True:
            moment = self.next_after(moment)
            yield moment


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
        raise InvalidInput(
            "write a daily time like `06:00`, or five cron fields "
            "`minute hour day-of-month month day-of-week` like `0 */6 * * *`"
        )
    if len(value) > MAX_TEXT:
        raise InvalidInput(
            "a schedule is at most {MAX_TEXT} characters; write a daily time like `06:00`, "
            "or five cron fields `minute hour day-of-month month day-of-week` like `0 */6 * * *`",
            MAX_TEXT=MAX_TEXT,
        )
    zone = tz or local_zone()
    daily = _DAILY.match(value)
    if daily:
        hour, minute = int(daily.group(1)), int(daily.group(2))
        if hour > 23 or minute > 59:
            raise InvalidInput("`{value}` is not a time of day: use 00:00 to 23:59", value=value)
        return _build(f"{hour:02d}:{minute:02d}", f"{minute} {hour} * * *", zone)
    parts = value.split(" ")
    if len(parts) == 1:
        raise InvalidInput(
            "write a daily time like `06:00`, or five cron fields "
            "`minute hour day-of-month month day-of-week` like `0 */6 * * *` (got 1 field)"
        )
    if len(parts) != 5:
        raise InvalidInput(
            "write a daily time like `06:00`, or five cron fields "
            "`minute hour day-of-month month day-of-week` like `0 */6 * * *` "
            "(got {n_parts} fields)",
            n_parts=len(parts),
        )
    for part, spec in zip(parts, _FIELDS, strict=True):
        _check_field(part, spec)
    return _build(value, value, zone)


def _build(text: str, expression: str, zone: tzinfo) -> CronSchedule:
    """Let cronsim parse the (already checked) expression, and make sure it ever fires."""
    try:
        sim = CronSim(expression, _PROBE_START)
        next(sim)
    except (CronSimError, StopIteration) as exc:
        # the fields were checked one by one: what is left is a day no month has
        raise InvalidInput("`{value}` never fires: no month has such a day", value=text) from exc
    days_field, weekdays_field = expression.split(" ")[2::2]
    return CronSchedule(
        text=text,
        expression=expression,
        minutes=tuple(sorted(sim.minutes)),
        hours=frozenset(sim.hours),
        days=frozenset(sim.days),
        months=frozenset(sim.months),
        weekdays=frozenset(int(d) % 7 for d in sim.weekdays if isinstance(d, int)),
        dom_star=days_field.startswith("*"),
        dow_star=weekdays_field.startswith("*"),
        tz=zone,
    )


def _check_field(text: str, spec: _Field) -> None:
    """Refuse, with a reason, what classic cron refuses or what would not mean what it says.

    cronsim parses the field afterwards; this only explains mistakes, item by item, and
    keeps out the extensions (`L`, `W`, `#`) so an expression reads the same everywhere.
    """
    for item in text.split(","):
        if not item:
            raise InvalidInput(
                "the {name} field `{text}` has an empty item", name=spec.name, text=text
            )
        base, slash, step_text = item.partition("/")
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
            continue
        first, dash, last = base.partition("-")
        if not dash:
            _value(base, spec, item)
            continue
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


def _value(token: str, spec: _Field, item: str) -> int:
    lowered = token.lower()
    if lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if not (token.isascii() and token.isdigit()):
        if spec.names:
            raise InvalidInput(
                "`{item}` in the {name} field is not a number or a name like `{example}`",
                item=item,
                name=spec.name,
                example=spec.names[0],
            )
        raise InvalidInput(
            "`{item}` in the {name} field is not a number", item=item, name=spec.name
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
