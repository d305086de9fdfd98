"""Scheduled capacity: "a minimum plan during this window", parsed and placed in time.

Pure: standard library only (``zoneinfo`` for the time zones), no Django, no clock: every
question takes the moment it is asked about. The engine reads schedules through
``Policy.schedules`` (it calls :meth:`Schedule.window_around` and reads ``spec`` and
``plan``); ``scaling.services`` parse the stored specs with :func:`parse_schedule`.

A schedule is written ``DAYS HH:MM-HH:MM TZ PLAN`` (DESIGN section 9), e.g.
``mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2``:

DAYS
    ``daily``, a day (``mon`` .. ``sun``), a range (``mon-fri``; ``fri-mon`` wraps over the
    weekend), or several of these joined by commas (``sat,sun``, ``mon-wed,fri``). They
    are the days the window *opens* on.
HH:MM-HH:MM
    Wall-clock times in TZ. An end at or before the start ends on the next day (an
    overnight window, ``22:00-02:00``); ``24:00`` ends at midnight. Start and end may not
    be equal.
TZ
    An IANA time zone name (``Europe/Berlin``, ``UTC``). The window follows that zone's
    wall clock across daylight-saving changes: ``08:00`` is 07:00 UTC in Berlin's winter
    and 06:00 UTC in its summer. A time the change skips (``02:30`` on the night clocks go
    forward) or repeats (on the night they go back) is read the way that makes the window
    longer: a start as its earlier reading, an end as its later one; more capacity is the
    safe side.
PLAN
    The plan to be on at least, as Heroku names it or by the short name of one plan of the
    instance's provider (resolved by the services, which store the full name).

A bad spec raises :class:`ScheduleError`, one line naming the part that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DAYS", "FORMAT", "MAX_LEAD_MINUTES", "Schedule", "ScheduleError", "parse_schedule", "next_schedule_edge"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FORMAT = "DAYS HH:MM-HH:MM TZ PLAN, e.g. 'mon-fri 08:00-18:00 Europe/Berlin premium-2'"
MAX_LEAD_MINUTES = 24 * 60  # a lead longer than a day would reach past the window's own day


class ScheduleError(ValueError):
    """A schedule spec that cannot be read; ``str()`` is one line naming the wrong part."""


@dataclass(frozen=True)
class Schedule:
    """One window of a minimum plan, repeating on ``days`` (0 = Monday) in ``zone``."""

    days: frozenset[int]
    start: time
    end: time  # time(0) with ends_at_midnight for "24:00"
    zone_name: str
    plan: str
    days_text: str
    ends_at_midnight: bool = False
    zone: ZoneInfo = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.zone is None:
            object.__setattr__(self, "zone", ZoneInfo(self.zone_name))

    @property
    def overnight(self) -> bool:
        """The window ends on the day after it opens."""
        return self.ends_at_midnight or self.end <= self.start

    @property
    def spec(self) -> str:
        """The schedule as written (canonical form)."""
        end = "24:00" if self.ends_at_midnight else f"{self.end:%H:%M}"
        return f"{self.days_text} {self.start:%H:%M}-{end} {self.zone_name} {self.plan}"

    def with_plan(self, plan: str) -> "Schedule":
        return replace(self, plan=plan)

    def window_on(self, day: date) -> tuple[datetime, datetime]:
        """The window opening on local ``day`` (whatever its weekday), as UTC instants."""
        opens = _instant(day, self.start, self.zone, earliest=True)
        closes = _instant(day + timedelta(days=1) if self.overnight else day, self.end, self.zone, earliest=False)
        return opens, closes

    def windows(self, since: datetime, until: datetime):
        """The windows (opens, closes), in order, that overlap ``since .. until``."""
        day = since.astimezone(self.zone).date() - timedelta(days=1)
        last = until.astimezone(self.zone).date()
        while day <= last:
            if day.weekday() in self.days:
                opens, closes = self.window_on(day)
                if closes > since and opens < until:
                    yield opens, closes
            day += timedelta(days=1)

    def window_around(self, now: datetime, lead: timedelta) -> tuple[datetime, datetime] | None:
        """The window that is open at ``now`` or opens within ``lead`` of it, else None."""
        for opens, closes in self.windows(now - timedelta(days=1), now + lead + timedelta(days=1)):
            if opens - lead <= now < closes:
                return opens, closes
        return None


def _instant(day: date, at: time, zone: ZoneInfo, *, earliest: bool) -> datetime:
    """A local wall-clock time as a UTC instant. A skipped or repeated time has two readings
    (``fold``): the earlier for a start, the later for an end (the longer window)."""
    readings = [datetime.combine(day, at, zone).replace(fold=fold).astimezone(timezone.utc) for fold in (0, 1)]
    return min(readings) if earliest else max(readings)


def _clean(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _days(text: str) -> frozenset[int]:
    if text == "daily":
        return frozenset(range(7))
    days: set[int] = set()
    for item in text.split(","):
        ends = item.split("-")
        if len(ends) > 2 or not all(end in DAYS for end in ends):
            raise ScheduleError(
                f"days {_clean(text)!r}: use daily, a day ({', '.join(DAYS)}), a range like mon-fri, "
                f"or several joined by commas like sat,sun"
            )
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)


def _time(text: str, part: str, *, allow_midnight_end: bool = False) -> time:
    hours, sep, minutes = text.partition(":")
    if allow_midnight_end and text == "24:00":
        return time(0)
    if sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit():
        if int(hours) < 24 and int(minutes) < 60:
            return time(int(hours), int(minutes))
    raise ScheduleError(f"{part} time {_clean(text)!r}: use HH:MM from 00:00 to 23:59" + (" or 24:00" if allow_midnight_end else ""))


def parse_schedule(text: str) -> Schedule:
    """Read ``DAYS HH:MM-HH:MM TZ PLAN`` (module docstring); :class:`ScheduleError` names the
    part that is wrong. Day names are case-insensitive; the plan is kept as written."""
    if not isinstance(text, str):
        raise ScheduleError(f"a schedule is text: {FORMAT}")
    parts = text.split()
    if len(parts) != 4:
        raise ScheduleError(f"schedule {_clean(text.strip())!r}: expected 4 parts, {FORMAT}")
    days_text, times_text, zone_name, plan = parts
    days_text = days_text.lower()
    days = _days(days_text)
    start_text, dash, end_text = times_text.partition("-")
    if not dash:
        raise ScheduleError(f"times {_clean(times_text)!r}: expected HH:MM-HH:MM, e.g. 08:00-18:00")
    start = _time(start_text, "start")
    end = _time(end_text, "end", allow_midnight_end=True)
    midnight = end_text == "24:00"
    if start == end and not midnight:
        raise ScheduleError(f"times {_clean(times_text)!r}: the window is empty (start and end are equal)")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"time zone {_clean(zone_name)!r}: not an IANA time zone name like Europe/Berlin or UTC") from None
    return Schedule(days=days, start=start, end=end, zone_name=zone_name, plan=plan, days_text=days_text,
                    ends_at_midnight=midnight, zone=zone)


def parse_lead_minutes(value) -> int:
    """A schedule lead in whole minutes, 0 to a day; ScheduleError otherwise."""
    try:
        minutes = int(str(value).strip())
    except ValueError:
        raise ScheduleError(f"schedule lead {_clean(str(value))!r}: a whole number of minutes") from None
    if not 0 <= minutes <= MAX_LEAD_MINUTES:
        raise ScheduleError(f"schedule lead {minutes}: must be from 0 to {MAX_LEAD_MINUTES} minutes")
    return minutes


def next_schedule_edge(schedules, now: datetime, lead: timedelta) -> datetime | None:
    """The first moment after ``now`` at which a schedule starts or stops raising the
    minimum (a window's opening less ``lead``, or its closing), within the next 8 days."""
    edges = [
        edge
        for schedule in schedules
        for opens, closes in schedule.windows(now, now + lead + timedelta(days=8))
        for edge in (opens - lead, closes)
        if edge > now
    ]
    return min(edges, default=None)
