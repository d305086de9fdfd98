"""The engine's schedule rules (scheduled_minimum, scheduled_floor): a minimum plan during a
window, raised ahead of it, across daylight-saving changes. Pure: no database, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from scaling.engine import Policy, decide
from scaling.schedules import parse_schedule
from tests.scaling.ladders import HEROKU_KVS
from tests.scaling.test_engine import series

P = {p.name: p for p in HEROKU_KVS}
UTC = timezone.utc


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def policy(*specs, lead=10, interval=1):
    return Policy(80, 80, timedelta(minutes=interval), schedules=tuple(parse_schedule(s) for s in specs),
                  schedule_lead=timedelta(minutes=lead))


WEEKDAYS = "mon-fri 09:00-17:00 UTC premium-2"
# 2024-03-04 is a Monday. The raise lead is 10 min + 1 min (interval) + 2 min (change time) = 13 min.


@dataclass
class Case:
    name: str
    now: datetime
    current: str
    action: str
    rule: str
    target: str | None = None
    policy: Policy = field(default_factory=lambda: policy(WEEKDAYS))
    mem: float = 30.0  # % of the current plan, steady for the last 40 min
    samples: bool = True
    min_plan: str = "mini"
    max_plan: str = "premium-9"


CASES = [
    Case("13 min before the window the plan is raised to the scheduled minimum",
         utc(2024, 3, 4, 8, 47), "premium-0", "up", "scheduled_minimum", "premium-2"),
    Case("14 min before the window nothing is raised yet (the low load could go down)",
         utc(2024, 3, 4, 8, 46), "premium-0", "down", "scale_down", "mini"),
    Case("inside the window a plan below the minimum is raised at once, without samples",
         utc(2024, 3, 4, 12), "mini", "up", "scheduled_minimum", "premium-2", samples=False),
    Case("a load bigger than the scheduled plan gets the plan that holds it",
         utc(2024, 3, 4, 8, 50), "premium-1", "up", "scheduled_minimum", "premium-3", mem=400.0),
    Case("inside the window a quiet instance on the scheduled plan does not go down",
         utc(2024, 3, 4, 12), "premium-2", "stay", "scheduled_floor"),
    Case("inside the window a plan above the minimum goes down, but not below it",
         utc(2024, 3, 4, 12), "premium-4", "down", "scale_down", "premium-2", mem=5.0),
    Case("inside the window a breach still moves the plan up",
         utc(2024, 3, 4, 12), "premium-2", "up", "breach", "premium-3", mem=90.0),
    Case("after the window the ordinary down rules apply",
         utc(2024, 3, 4, 17, 40), "premium-2", "down", "scale_down", "mini", mem=3.0),
    Case("at the window's end the floor is gone",
         utc(2024, 3, 4, 17), "premium-2", "down", "scale_down", "mini", mem=3.0),
    Case("on Saturday a weekday schedule asks nothing",
         utc(2024, 3, 9, 12), "premium-0", "down", "scale_down", "mini"),
    Case("a scheduled plan above the max plan is raised only to the max plan",
         utc(2024, 3, 4, 12), "mini", "up", "scheduled_minimum", "premium-1", max_plan="premium-1", samples=False),
    Case("of two windows in force the higher plan counts",
         utc(2024, 3, 4, 12), "premium-2", "up", "scheduled_minimum", "premium-4",
         policy=policy(WEEKDAYS, "daily 11:00-13:00 UTC premium-4")),
    Case("a longer lead raises earlier (60 + 1 + 2 min)",
         utc(2024, 3, 4, 7, 57), "premium-0", "up", "scheduled_minimum", "premium-2",
         policy=policy(WEEKDAYS, lead=60)),
    Case("a 10-minute scaling rate raises 22 min ahead (10 + 10 + 2)",
         utc(2024, 3, 4, 8, 38), "premium-0", "up", "scheduled_minimum", "premium-2",
         policy=policy(WEEKDAYS, interval=10)),
    Case("overnight window: Friday 22:00 to Saturday 02:00, held at Saturday 01:00",
         utc(2024, 3, 9, 1), "premium-2", "stay", "scheduled_floor",
         policy=policy("fri 22:00-02:00 UTC premium-2")),
    Case("overnight window: after Saturday 02:00 it comes down",
         utc(2024, 3, 9, 2, 30), "premium-2", "down", "scale_down", "mini", mem=3.0,
         policy=policy("fri 22:00-02:00 UTC premium-2")),
    # Europe/Berlin: 08:00 is 07:00 UTC before 2024-03-31 and 06:00 UTC on and after it.
    Case("Berlin, winter: raised 13 min before 07:00 UTC",
         utc(2024, 3, 30, 6, 47), "premium-0", "up", "scheduled_minimum", "premium-2",
         policy=policy("daily 08:00-18:00 Europe/Berlin premium-2")),
    Case("Berlin, the day clocks go forward: raised 13 min before 06:00 UTC",
         utc(2024, 3, 31, 5, 47), "premium-0", "up", "scheduled_minimum", "premium-2",
         policy=policy("daily 08:00-18:00 Europe/Berlin premium-2")),
    Case("Berlin, the day clocks go forward: the window closes at 16:00 UTC",
         utc(2024, 3, 31, 16, 30), "premium-2", "down", "scale_down", "mini", mem=3.0,
         policy=policy("daily 08:00-18:00 Europe/Berlin premium-2")),
    Case("Berlin, the day clocks go back: 08:00 is 07:00 UTC again, 06:50 UTC is too early",
         utc(2024, 10, 27, 6, 46), "premium-0", "down", "scale_down", "mini",
         policy=policy("daily 08:00-18:00 Europe/Berlin premium-2")),
    Case("Berlin, the day clocks go back: raised at 06:47 UTC",
         utc(2024, 10, 27, 6, 47), "premium-0", "up", "scheduled_minimum", "premium-2",
         policy=policy("daily 08:00-18:00 Europe/Berlin premium-2")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_schedule_rule(case: Case):
    current = P[case.current]
    samples = series(current, 40, mem=case.mem, conn=5, end=case.now) if case.samples else []
    decision = decide(current=current, ladder=HEROKU_KVS, min_plan=P[case.min_plan], max_plan=P[case.max_plan],
                      samples=samples, policy=case.policy, last_change_at=None, now=case.now)
    assert (decision.action, decision.rule) == (case.action, case.rule), decision.reason
    assert (decision.target.name if decision.target else None) == case.target, decision.reason


def test_a_scheduled_raise_says_which_schedule_and_when_its_window_opens():
    now = utc(2024, 3, 4, 8, 50)
    decision = decide(current=P["premium-0"], ladder=HEROKU_KVS, min_plan=P["mini"], max_plan=P["premium-9"],
                      samples=[], policy=policy(WEEKDAYS), last_change_at=None, now=now)
    assert decision.scheduled.opens_at == utc(2024, 3, 4, 9)
    assert decision.reason == (
        "the schedule 'mon-fri 09:00-17:00 UTC premium-2' asks for at least premium-2 from 2024-03-04 09:00 UTC "
        "to 2024-03-04 17:00 UTC (raised 13 min ahead: the lead, a check interval and the time a change takes); "
        "moving to premium-2"
    )


def test_a_held_plan_says_the_schedule_keeps_it():
    now = utc(2024, 3, 4, 12)
    decision = decide(current=P["premium-2"], ladder=HEROKU_KVS, min_plan=P["mini"], max_plan=P["premium-9"],
                      samples=series(P["premium-2"], 40, mem=3, conn=5, end=now), policy=policy(WEEKDAYS),
                      last_change_at=None, now=now)
    assert decision.reason.endswith(
        "the schedule 'mon-fri 09:00-17:00 UTC premium-2' asks for at least premium-2 until 2024-03-04 17:00 UTC; "
        "not scaling down")


def test_a_scheduled_plan_outside_the_ladder_is_an_error_naming_the_schedule():
    with pytest.raises(ValueError, match="schedule 'daily 00:00-24:00 UTC rediscloud:100'"):
        decide(current=P["premium-0"], ladder=HEROKU_KVS, min_plan=P["mini"], max_plan=P["premium-9"], samples=[],
               policy=policy("daily 00:00-24:00 UTC rediscloud:100"), last_change_at=None, now=utc(2024, 3, 4, 12))
