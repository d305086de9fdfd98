"""Schedules (scaling/schedules.py): parsing, and where a window lies in time, across
daylight-saving changes. Pure tests: no database, no clock."""

from datetime import datetime, timedelta, timezone

import pytest

from scaling.schedules import ScheduleError, next_schedule_edge, parse_lead_minutes, parse_schedule

UTC = timezone.utc


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "spec, days",
    [
        ("daily 08:00-18:00 UTC premium-2", {0, 1, 2, 3, 4, 5, 6}),
        ("mon-fri 08:00-18:00 UTC premium-2", {0, 1, 2, 3, 4}),
        ("sat,sun 08:00-18:00 UTC premium-2", {5, 6}),
        ("fri-mon 08:00-18:00 UTC premium-2", {4, 5, 6, 0}),
        ("Mon-Wed,fri 08:00-18:00 UTC premium-2", {0, 1, 2, 4}),
        ("tue 08:00-18:00 UTC premium-2", {1}),
    ],
)
def test_days_are_read_as_daily_names_ranges_and_lists(spec, days):
    assert parse_schedule(spec).days == frozenset(days)


def test_a_spec_is_kept_in_its_canonical_form():
    schedule = parse_schedule("  MON-FRI   22:00-24:00 Europe/Berlin heroku-redis:premium-2 ")
    assert schedule.spec == "mon-fri 22:00-24:00 Europe/Berlin heroku-redis:premium-2"
    assert parse_schedule(schedule.spec) == schedule


@pytest.mark.parametrize(
    "spec, message",
    [
        ("mon-fri 08:00-18:00 Europe/Berlin", "expected 4 parts"),
        ("", "expected 4 parts"),
        ("weekdays 08:00-18:00 UTC premium-2", "days 'weekdays'"),
        ("mon-xyz 08:00-18:00 UTC premium-2", "days 'mon-xyz'"),
        ("mon--fri 08:00-18:00 UTC premium-2", "days 'mon--fri'"),
        ("mon, 08:00-18:00 UTC premium-2", "days 'mon,'"),
        ("daily 0800-1800 UTC premium-2", "start time '0800'"),
        ("daily 08:00 UTC premium-2", "times '08:00'"),
        ("daily 25:00-18:00 UTC premium-2", "start time '25:00'"),
        ("daily 8:00-18:00 UTC premium-2", "start time '8:00'"),
        ("daily 08:00-18:60 UTC premium-2", "end time '18:60'"),
        ("daily 24:00-02:00 UTC premium-2", "start time '24:00'"),
        ("daily 08:00-08:00 UTC premium-2", "the window is empty"),
        ("daily 08:00-18:00 Mars/Olympus premium-2", "time zone 'Mars/Olympus'"),
        ("daily 08:00-18:00 ../../etc/passwd premium-2", "time zone '../../etc/passwd'"),
        ("daily 08:00-18:00 CEST premium-2", "time zone 'CEST'"),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_wrong_part(spec, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(spec)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value, message", [("abc", "a whole number"), ("-5", "from 0 to 1440"), ("1441", "from 0 to 1440")])
def test_a_bad_lead_is_one_line(value, message):
    with pytest.raises(ScheduleError, match=message):
        parse_lead_minutes(value)


LEAD = timedelta(minutes=10)

# (spec, now, the window expected around now with LEAD, or None)
WINDOWS = [
    # Weekdays only: Monday 2024-03-04 inside; Saturday none.
    ("mon-fri 09:00-17:00 UTC p", utc(2024, 3, 4, 12), (utc(2024, 3, 4, 9), utc(2024, 3, 4, 17))),
    ("mon-fri 09:00-17:00 UTC p", utc(2024, 3, 9, 12), None),
    # The lead: 8:51 is within 10 minutes of 9:00, 8:49 is not; the end is exclusive.
    ("mon-fri 09:00-17:00 UTC p", utc(2024, 3, 4, 8, 51), (utc(2024, 3, 4, 9), utc(2024, 3, 4, 17))),
    ("mon-fri 09:00-17:00 UTC p", utc(2024, 3, 4, 8, 49), None),
    ("mon-fri 09:00-17:00 UTC p", utc(2024, 3, 4, 17), None),
    # Overnight: opens Friday 22:00, still open Saturday 01:00 although Saturday is no window day.
    ("mon-fri 22:00-02:00 UTC p", utc(2024, 3, 9, 1), (utc(2024, 3, 8, 22), utc(2024, 3, 9, 2))),
    ("mon-fri 22:00-02:00 UTC p", utc(2024, 3, 9, 2, 30), None),
    ("mon-fri 22:00-02:00 UTC p", utc(2024, 3, 9, 21, 55), None),  # Saturday evening opens nothing
    ("sat,sun 22:00-24:00 UTC p", utc(2024, 3, 9, 23, 59), (utc(2024, 3, 9, 22), utc(2024, 3, 10, 0))),
    # Europe/Berlin, clocks forward on Sunday 2024-03-31 (02:00 CET -> 03:00 CEST):
    # 08:00 is 07:00 UTC on Saturday and 06:00 UTC on Sunday.
    ("daily 08:00-18:00 Europe/Berlin p", utc(2024, 3, 30, 6, 55), (utc(2024, 3, 30, 7), utc(2024, 3, 30, 17))),
    ("daily 08:00-18:00 Europe/Berlin p", utc(2024, 3, 31, 5, 55), (utc(2024, 3, 31, 6), utc(2024, 3, 31, 16))),
    ("daily 08:00-18:00 Europe/Berlin p", utc(2024, 3, 31, 16, 30), None),
    # An overnight window over the change is an hour shorter: 22:00 CET to 04:00 CEST = 5 h.
    ("sat 22:00-04:00 Europe/Berlin p", utc(2024, 3, 31, 1, 59), (utc(2024, 3, 30, 21), utc(2024, 3, 31, 2))),
    # A start the change skips (02:30 does not exist that night): its earlier reading.
    ("sun 02:30-05:00 Europe/Berlin p", utc(2024, 3, 31, 0, 30), (utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 3))),
    # Clocks back on Sunday 2024-10-27 (03:00 CEST -> 02:00 CET): an overnight window is 7 h,
    # and a repeated end time (02:30 happens twice) is its later reading.
    ("sat 22:00-04:00 Europe/Berlin p", utc(2024, 10, 27, 2, 30), (utc(2024, 10, 26, 20), utc(2024, 10, 27, 3))),
    ("sat 22:00-02:30 Europe/Berlin p", utc(2024, 10, 27, 1, 15), (utc(2024, 10, 26, 20), utc(2024, 10, 27, 1, 30))),
    # America/New_York moves on another day (2024-03-10): 09:00 EDT is 13:00 UTC.
    ("sun 09:00-10:00 America/New_York p", utc(2024, 3, 10, 12, 55), (utc(2024, 3, 10, 13), utc(2024, 3, 10, 14))),
]


@pytest.mark.parametrize("spec, now, expected", WINDOWS)
def test_the_window_around_a_moment_follows_the_zones_wall_clock(spec, now, expected):
    assert parse_schedule(spec).window_around(now, LEAD) == expected


def test_the_next_edge_is_the_next_raise_or_close():
    schedules = [parse_schedule("mon-fri 09:00-17:00 UTC p"), parse_schedule("sat 12:00-13:00 UTC q")]
    assert next_schedule_edge(schedules, utc(2024, 3, 4, 7), LEAD) == utc(2024, 3, 4, 8, 50)
    assert next_schedule_edge(schedules, utc(2024, 3, 4, 8, 50), LEAD) == utc(2024, 3, 4, 17)
    assert next_schedule_edge(schedules, utc(2024, 3, 8, 17), LEAD) == utc(2024, 3, 9, 11, 50)
    assert next_schedule_edge([], utc(2024, 3, 4, 7), LEAD) is None
