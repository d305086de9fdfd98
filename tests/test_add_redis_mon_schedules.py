"""add_redis_mon.py's schedules: --schedule (repeatable), --schedule-lead, --no-schedule and the
prompts after the plan range; the real script against the fake Heroku and PostgreSQL."""

import json

import pytest

from tests.test_add_redis_mon import (  # noqa: F401 (fixtures)
    REQUIRED, cli, database, empty_instances, fake, lines, one_line, query, redis_server,
)

pytestmark = pytest.mark.slow


def schedules_of(database, name):
    rows = query(database, "SELECT schedules, schedule_lead_minutes FROM scaling_redisinstance WHERE name = %s", (name,))
    return rows[0] if rows else None


def test_schedule_flags_save_the_specs_with_full_plan_names_and_the_lead(cli, database):
    result = cli(*REQUIRED, "--max-plan", "premium-5",
                 "--schedule", "mon-fri 08:00-18:00 Europe/Berlin premium-2",
                 "--schedule", "sat,sun 22:00-02:00 UTC heroku-redis:premium-3", "--schedule-lead", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert schedules_of(database, "orders") == (
        ["mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2", "sat,sun 22:00-02:00 UTC heroku-redis:premium-3"], 30)
    assert ("Schedules:            mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2; "
            "sat,sun 22:00-02:00 UTC heroku-redis:premium-3 (each plan up 30 min before its window opens)") in result.stdout


def test_an_edit_without_schedule_flags_keeps_them_and_no_schedule_clears_them(cli, database):
    assert cli(*REQUIRED, "--schedule", "daily 06:00-07:00 UTC premium-2").returncode == 0
    assert cli(*REQUIRED, "--yes", "--memory-threshold", "70").returncode == 0
    assert schedules_of(database, "orders") == (["daily 06:00-07:00 UTC heroku-redis:premium-2"], 10)
    result = cli(*REQUIRED, "--yes", "--no-schedule")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Schedules:            none" in result.stdout
    assert schedules_of(database, "orders") == ([], 10)


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--schedule", "mon-fri 08:00-18:00 Mars/Base premium-2"),
         "add_redis_mon.py: --schedule: time zone 'Mars/Base': not an IANA time zone name like Europe/Berlin or UTC"),
        (("--schedule", "weekdays 08:00-18:00 UTC premium-2"), "--schedule: days 'weekdays'"),
        (("--schedule", "mon-fri 8-18 UTC premium-2"), "--schedule: start time '8'"),
        (("--schedule", "mon-fri 08:00-18:00 UTC"), "--schedule: schedule 'mon-fri 08:00-18:00 UTC': expected 4 parts"),
        (("--schedule", "mon-fri 08:00-18:00 UTC rediscloud:100"),
         "--schedule: plan of schedule 'mon-fri 08:00-18:00 UTC rediscloud:100': 'rediscloud:100' is not a heroku-redis plan"),
        (("--schedule", "mon-fri 08:00-18:00 UTC premium-99"), "unknown plan 'premium-99'"),
        (("--schedule-lead", "soon"), "--schedule-lead: schedule lead 'soon': a whole number of minutes"),
        (("--schedule-lead", "2000"), "--schedule-lead: schedule lead 2000: must be from 0 to 1440 minutes"),
        (("--no-schedule", "--schedule", "daily 06:00-07:00 UTC premium-2"), "--no-schedule: cannot be given with --schedule"),
    ],
)
def test_a_bad_schedule_flag_is_one_line_exit_2_and_nothing_saved(cli, database, flags, message):
    result = cli(*REQUIRED, *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in one_line(result.stderr)
    assert schedules_of(database, "orders") is None


def test_a_person_adds_schedules_after_the_plan_range_and_typos_are_asked_again(cli, database):
    answers = lines(
        "orders", "shop", "",            # name, app, config var
        "", "", "", "",                  # metric rate, memory %, connection %, scaling enabled
        "", "premium-5",                 # min plan, max plan
        "",                              # scaling rate
        "mon-fri 08:00-18:00 Berlin premium-2",          # bad zone
        "mon-fri 08:00-18:00 Europe/Berlin premium-2",   # good
        "",                              # no more
        "x", "15",                       # lead: typo, then 15
        "", "", "",                      # notifications
        "", "",                          # workload, scale down
        "",                              # Save?
    )
    result = cli(stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.index("Scaling rate (") < out.index("Add a schedule (DAYS HH:MM-HH:MM TZ PLAN; Enter: no more)") \
        < out.index("Schedule lead (") < out.index("Mail on threshold breach")
    assert "! time zone 'Berlin': not an IANA time zone name" in out
    assert "! schedule lead 'x': a whole number of minutes" in out
    assert "Schedules:            mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2 (each plan up 15 min" in out
    assert schedules_of(database, "orders") == (["mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2"], 15)
