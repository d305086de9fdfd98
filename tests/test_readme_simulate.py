"""The README's simulate example, run exactly as written there, gives the figures of the
README's table for that trace (the table is printed by benchmarks/simulate_traces.py)."""

import re
import shlex
import sys

import pytest

from tests.helpers import ROOT, production_env, run

pytestmark = pytest.mark.slow
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Simulation"):]
SECTION = SECTION[:SECTION.index("\n## ", 1)]


def _example_command():
    blocks = re.findall(r"```sh\n(.*?)```", SECTION, re.S)
    commands = [line for block in blocks for line in block.splitlines() if " manage.py simulate " in line]
    assert len(commands) == 1, commands
    return shlex.split(commands[0])


def _table_rows(trace):
    """run label -> (cost, changes, over threshold, over capacity, final plan) from the README's table."""
    rows = {}
    for line in SECTION.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] == trace:
            rows[cells[1]] = tuple(cells[2:])
    return rows


def _minutes(duration):
    """'3m45s' -> '3.8 min', as the table writes it."""
    minutes, seconds = re.fullmatch(r"(\d+)m(\d+)s", duration).groups()
    return f"{(int(minutes) * 60 + int(seconds)) / 60:.1f} min"


def test_the_readme_simulate_example_gives_the_figures_of_its_table():
    command = _example_command()
    assert command[:3] == [".venv/bin/python", "manage.py", "simulate"]
    trace = re.fullmatch(r"examples/traces/(\w+)\.csv", command[3]).group(1)
    expected = _table_rows(trace)
    assert {"autoscaler", "fixed at start (premium-0)"} <= set(expected), expected

    env = production_env(DEBUG="true", DATABASE_URL="sqlite:////nonexistent-dir/none.sqlite3")
    result = run([sys.executable, *command[1:]], env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout

    figures = {}
    for label, line in re.findall(r"^((?:autoscaled|fixed at \w+) \(?[^$]*?)\s+(\$[\d,.]+\s+\S+\s+\S+)$", out, re.M):
        cost, over_threshold, over_capacity = line.split()
        figures[label.strip()] = (cost, _minutes(over_threshold), _minutes(over_capacity))
    changes = len(re.findall(r"^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \S+ -> \S+$", out, re.M))
    final = re.search(r"^Final plan: \S+:(\S+)$", out, re.M).group(1)

    cost, table_changes, over_threshold, over_capacity, table_final = expected["autoscaler"]
    assert figures["autoscaled"] == (cost, over_threshold, over_capacity)
    assert (str(changes), final) == (table_changes, table_final)
    for label, (cost, _, over_threshold, over_capacity, plan) in expected.items():
        fixed = re.fullmatch(r"fixed at (max|start) \((\S+)\)", label)
        if fixed:
            printed = f"fixed at {fixed.group(1)} (heroku-redis:{fixed.group(2)})"
            assert figures[printed] == (cost, over_threshold, over_capacity), label
