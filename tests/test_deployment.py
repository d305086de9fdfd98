"""The deployable app as an operator meets it: start-up, initialize.sh, check --deploy."""

import json

import pytest

from scaling.services.periodic import PERIODIC_TASKS
from tests.helpers import ROOT, manage, production_env, run, scratch_database

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_start_up_without_a_required_setting_stops_with_one_line(missing):
    result = manage("check", env=production_env(**{missing: None}))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {missing} is not set")


def test_a_malformed_boolean_setting_stops_start_up_with_one_line():
    result = manage("check", env=production_env(ENABLE_EMAILS="maybe"))
    assert result.returncode != 0
    assert result.stderr.strip() == "configuration error: ENABLE_EMAILS must be true or false, not 'maybe'"


def test_check_deploy_is_clean_in_the_production_configuration():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_initialize_sh_run_twice_sets_up_once_and_then_changes_nothing():
    with scratch_database() as url:
        env = production_env(
            DATABASE_URL=url, PYTHON=__import__("sys").executable,
            DJANGO_SUPERUSER_USERNAME="operator", DJANGO_SUPERUSER_PASSWORD="a-long-random-password-91",
            DJANGO_SUPERUSER_EMAIL="ops@example.com",
        )
        first = run(["bash", "initialize.sh"], env=env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "admin user 'operator' created" in first.stdout
        assert "plans: 30 created" in first.stdout
        # The alert relay's sweep is scheduled by its migration (so that existing deployments get it too).
        assert "kept as is: autoscaler: deliver alerts due" in first.stdout
        assert first.stdout.count("created: autoscaler:") == len(PERIODIC_TASKS) - 1

        second = run(["bash", "initialize.sh"], env=env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "admin user 'operator' exists; left as it is" in second.stdout
        assert "plans: 0 created, 0 updated, 30 unchanged" in second.stdout
        assert second.stdout.count("kept as is: autoscaler:") == len(PERIODIC_TASKS)
        assert "No migrations to apply" in second.stdout


def test_initialize_sh_keeps_an_operators_edit_of_a_periodic_task():
    with scratch_database() as url:
        env = production_env(DATABASE_URL=url, PYTHON=__import__("sys").executable)
        assert run(["bash", "initialize.sh"], env=env).returncode == 0
        edit = manage("shell", "-c", "from django_celery_beat.models import PeriodicTask as P; "
                      "P.objects.filter(name__contains='prune').update(enabled=False)", env=env)
        assert edit.returncode == 0, edit.stderr
        assert run(["bash", "initialize.sh"], env=env).returncode == 0
        read = manage("shell", "-c", "from django_celery_beat.models import PeriodicTask as P; "
                      "print(P.objects.get(name__contains='prune').enabled)", env=env)
        assert read.stdout.strip().splitlines()[-1] == "False"


def test_app_json_describes_every_variable_and_has_no_default_password():
    app = json.loads((ROOT / "app.json").read_text())
    assert app["scripts"]["postdeploy"] == "bash initialize.sh"
    assert app["success_url"] == "/admin"
    for name, spec in app["env"].items():
        assert spec.get("description"), name
    assert app["env"]["DJANGO_SUPERUSER_PASSWORD"].get("generator") == "secret"
    assert "value" not in app["env"]["DJANGO_SUPERUSER_PASSWORD"]
    assert app["env"]["SECRET_KEY"].get("generator") == "secret"
    assert {"web", "worker", "beat"} <= set(app["formation"])
    assert app["formation"]["beat"]["quantity"] == 1


def test_the_procfile_runs_exactly_one_beat_with_the_database_scheduler_and_migrates_on_release():
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert "migrate" in procfile["release"]
    assert "gunicorn" in procfile["web"]
    assert "DatabaseScheduler" in procfile["beat"]
    assert "beat" not in procfile["worker"] and "-B" not in procfile["worker"].split()
