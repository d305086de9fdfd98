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
