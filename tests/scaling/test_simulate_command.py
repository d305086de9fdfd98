"""`manage.py simulate` as a user runs it: real process, example traces, exit codes."""

import json
import sys

import pytest

from tests.helpers import ROOT, run

pytestmark = pytest.mark.slow
TRACES = ROOT / "examples" / "traces"


def _simulate(*args, env=None):
    import os

    env = dict(os.environ, DEBUG="true", DJANGO_SETTINGS_MODULE="autoscaler.settings", DATABASE_URL="sqlite:////nonexistent-dir/x.sqlite3")
    return run([sys.executable, "manage.py", "simulate", *args], env=env)


def test_simulate_prints_one_json_object_with_the_fixed_keys():
    result = _simulate(str(TRACES / "sudden_spike.csv"), "--plan", "heroku-redis:premium-0", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"plan_changes", "cost", "seconds_over_threshold", "seconds_over_capacity", "final_plan"}
    assert report["plan_changes"] and set(report["plan_changes"][0]) == {"at", "from", "to", "reason"}
    assert report["plan_changes"][0]["from"] == "heroku-redis:premium-0"
    assert report["cost"] > 0


def test_simulate_reports_against_fixed_plans_for_a_person():
    result = _simulate(str(TRACES / "daily_queue_cycle.csv"), "--plan", "premium-0", "--max-plan", "premium-5")
    assert result.returncode == 0, result.stderr
    assert "fixed at max (heroku-redis:premium-5)" in result.stdout
    assert "Final plan:" in result.stdout and "Saved against the max plan" in result.stdout


@pytest.mark.parametrize(
    "body, message",
    [
        ("timestamp,used_memory\n0,1\n", "connected_clients"),
        ("timestamp,used_memory,connected_clients\n60,1,1\n0,1,1\n", "line 3"),
        ("timestamp,used_memory,connected_clients\n0,1,1\n0,1,1\n", "line 3"),
        ("timestamp,used_memory,connected_clients\n0,-5,1\n", "line 2"),
    ],
)
def test_a_bad_trace_is_one_line_naming_the_row_and_exit_code_2(tmp_path, body, message):
    trace = tmp_path / "trace.csv"
    trace.write_text(body)
    result = _simulate(str(trace), "--plan", "premium-0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_an_unknown_plan_is_one_line_and_exit_code_2():
    result = _simulate(str(TRACES / "sudden_spike.csv"), "--plan", "premium-99")
    assert result.returncode == 2
    assert result.stderr.strip() == "CommandError: --plan: unknown plan 'premium-99'"


@pytest.mark.parametrize(
    "rows, message",
    [
        ("9999-12-31T23:59:59,1,1\n", "line 2: timestamp '9999-12-31T23:59:59' is out of range"),
        ("0001-01-01T00:30:00+01:00,1,1\n", "line 2: timestamp"),
        ("0,1e30,1\n", "line 2: used_memory is too large"),
        ("0,1,99999999999999\n", "line 2: connected_clients is too large"),
    ],
)
def test_times_out_of_range_and_values_too_large_are_one_line_and_exit_code_2(tmp_path, rows, message):
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,used_memory,connected_clients\n" + rows)
    result = _simulate(str(trace), "--plan", "premium-0")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_a_trace_spanning_years_is_replayed(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,used_memory,connected_clients\n"
                     "2020-01-01T00:00:00Z,10485760,5\n2024-01-01T00:00:00Z,10485760,5\n")
    result = _simulate(str(trace), "--plan", "premium-0", "--min-plan", "premium-0", "--json", "--metric-rate", "30s")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["plan_changes"] == [] and report["final_plan"] == "heroku-redis:premium-0"


@pytest.mark.parametrize("delay", ["100000000000000", "86401", "-1"])
def test_a_change_delay_out_of_range_is_one_line_and_exit_code_2(delay):
    result = _simulate(str(TRACES / "sudden_spike.csv"), "--plan", "premium-0", "--change-delay", delay)
    assert result.returncode == 2
    assert result.stderr.strip() == f"CommandError: --change-delay: must be from 0 to 86400 seconds, not {delay}"


def test_a_schedule_has_the_plan_up_before_a_scheduled_batch_and_down_after_it():
    args = (str(TRACES / "scheduled_batch.csv"), "--plan", "premium-0", "--max-plan", "premium-5", "--json")
    without = json.loads(_simulate(*args).stdout)
    result = _simulate(*args, "--schedule", "mon-fri 06:00-07:00 UTC premium-2", "--schedule-lead", "10")
    assert result.returncode == 0, result.stderr
    scheduled = json.loads(result.stdout)
    assert without["seconds_over_capacity"] > 0  # the batch's step drops data on premium-0
    assert scheduled["seconds_over_capacity"] == 0
    ups = [c for c in scheduled["plan_changes"] if c["reason"].startswith("the schedule")]
    # Raised 13 min before 06:00 on both days (lead 10 min + 1 min check + 2 min change), landed by 05:48.
    assert [(c["at"], c["from"], c["to"]) for c in ups] == [
        ("2024-03-04T05:47:00Z", "heroku-redis:premium-0", "heroku-redis:premium-2"),
        ("2024-03-05T05:47:00Z", "heroku-redis:premium-0", "heroku-redis:premium-2"),
    ]
    assert scheduled["final_plan"] == "heroku-redis:premium-0"  # the down rules bring it back after the batch


def test_a_longer_schedule_lead_raises_earlier():
    result = _simulate(str(TRACES / "scheduled_batch.csv"), "--plan", "premium-0", "--json",
                       "--schedule", "mon-fri 06:00-07:00 UTC premium-2", "--schedule-lead", "60")
    assert json.loads(result.stdout)["plan_changes"][0]["at"] == "2024-03-04T04:57:00Z"


@pytest.mark.parametrize(
    "args, message",
    [
        (("--schedule", "mon-fri 06:00-07:00 Mars/Base premium-2"), "--schedule: time zone 'Mars/Base'"),
        (("--schedule", "weekdays 06:00-07:00 UTC premium-2"), "--schedule: days 'weekdays'"),
        (("--schedule", "mon-fri 06:00-07:00 UTC 100"), "unknown plan '100' of heroku-redis"),
        (("--schedule-lead", "soon"), "--schedule-lead: schedule lead 'soon'"),
    ],
)
def test_a_bad_schedule_is_one_line_and_exit_code_2(args, message):
    result = _simulate(str(TRACES / "scheduled_batch.csv"), "--plan", "premium-0", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
