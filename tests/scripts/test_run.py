"""scripts/run: the Procfile's processes under one manager, stopped together, one copy."""

import signal
import socket
import subprocess

import pytest

from tests.helpers import ROOT
from standins.redis_servers import free_port
from tests.scripts.local_run import LocalRun, alive, clean_env, descendants, working_tree_copy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    return working_tree_copy(tmp_path_factory.mktemp("clone"))


@pytest.fixture
def local_run(clone):
    runs = []

    def start(**env):
        run = LocalRun(clone, clean_env(**env))
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.process.poll() is None:
            run.kill_everything()


def _stopped_cleanly(run, children):
    status = run.wait(timeout=90)
    left = [pid for pid in children if alive(pid)]
    return status, left


def test_dot_env_is_ignored_by_git_so_it_is_never_deployed():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0


def test_sigterm_stops_web_worker_and_beat_and_exits_0_and_a_second_copy_is_refused_meanwhile(local_run, clone):
    port = free_port()
    run = local_run(PORT=str(port))
    assert run.ready(), run.output[-3000:]
    children = descendants(run.process.pid)
    assert len(children) >= 5, run.output  # honcho, gunicorn master and workers, worker, beat
    settings_file = (clone / ".env").read_text().splitlines()
    assert "DEBUG=true" in settings_file
    assert any(line.startswith("SECRET_KEY=") and len(line) > 60 for line in settings_file)
    assert "# HEROKU_API_KEY=" in settings_file
    assert any(line.startswith("# RECIPIENTS=") for line in settings_file)

    second = LocalRun(clone, clean_env(PORT=str(free_port())))
    assert second.wait(timeout=60) == 1
    assert second.lines == [f"scripts/run: already running in {clone} (var/run.lock is held); stop that one first"]

    run.process.send_signal(signal.SIGTERM)
    status, left = _stopped_cleanly(run, children)
    assert status == 0, run.output[-3000:]
    assert left == [], run.output[-3000:]
    # The servers' last lines are shown, not lost.
    assert "Shutting down" in run.output or "Handling signal: term" in run.output, run.output[-3000:]


def test_ctrl_c_stops_everything_and_exits_0_and_an_existing_dot_env_is_kept_under_the_shell(local_run, clone):
    settings_file = ("# mine\nDEBUG=true\nSECRET_KEY=kept-as-written-0123456789-0123456789-0123456789\n"
                     "WEB_CONCURRENCY=1\nWORKER_CONCURRENCY=3\n")
    (clone / ".env").write_text(settings_file)
    run = local_run(PORT=str(free_port()), WORKER_CONCURRENCY="2")
    assert run.ready(), run.output[-3000:]
    assert run.output.count("Booting worker with pid") == 1  # from .env
    assert "concurrency: 2 (thread)" in run.output  # the shell's value wins over .env's
    assert (clone / ".env").read_text() == settings_file
    children = descendants(run.process.pid)
    run.press_ctrl_c()
    status, left = _stopped_cleanly(run, children)
    assert status == 0, run.output[-3000:]
    assert left == [], run.output[-3000:]


def test_the_web_server_failing_to_start_stops_worker_and_beat_and_the_run_fails(local_run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = local_run(PORT=str(busy.getsockname()[1]))
        assert run.wait_for("Connection in use", timeout=240), run.output[-3000:]
        children = descendants(run.process.pid)
        status, left = _stopped_cleanly(run, children)
    assert status != 0, run.output[-3000:]
    assert left == [], run.output[-3000:]
