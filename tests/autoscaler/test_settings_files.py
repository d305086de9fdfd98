"""Settings as a local run and production meet them: .env, and no files made at import."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path):
    """A copy of the settings package alone, so that every file it makes shows."""
    shutil.copytree(ROOT / "autoscaler", tmp_path / "autoscaler", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _python(project, code, **env):
    base = {key: value for key, value in os.environ.items()
            if key not in {"ENV_FILE", "SECRET_KEY", "DEBUG", "RECIPIENTS", "ALLOWED_HOSTS", "CELERY_BROKER_URL",
                           "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    base.update(PYTHONPATH=str(project), PYTHONDONTWRITEBYTECODE="1", DJANGO_SETTINGS_MODULE="autoscaler.settings")
    base.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=project, env=base, capture_output=True, text=True, timeout=60)


def _files(project):
    return sorted(str(path.relative_to(project)) for path in project.rglob("*"))


def test_importing_the_settings_creates_no_file_or_folder(project):
    before = _files(project)
    result = _python(project, "import autoscaler.settings", DEBUG="true", SECRET_KEY="s" * 50)
    assert result.returncode == 0, result.stderr
    assert _files(project) == before


def test_settings_read_dot_env_and_a_variable_of_the_real_environment_wins(project):
    (project / ".env").write_text(
        "# written by scripts/run\nDEBUG=true\nSECRET_KEY=from-the-dot-env-file-0123456789\n"
        "RECIPIENTS=dotenv@example.com\n# HEROKU_API_KEY=\n")
    result = _python(project, "from autoscaler import settings as s; print(s.DEBUG, s.SECRET_KEY, s.RECIPIENTS, repr(s.HEROKU_API_KEY))",
                     RECIPIENTS="shell@example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "from-the-dot-env-file-0123456789", "['shell@example.com']", "''"]


def test_without_dot_env_a_local_run_without_a_secret_key_stops_with_one_line_saying_how_to_get_one(project):
    result = _python(project, "import autoscaler.settings", DEBUG="true")
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "configuration error: SECRET_KEY is not set: set it (50+ random characters) "
        "or run scripts/run once, which writes one into .env")


def test_an_empty_env_file_setting_reads_no_dot_env(project):
    (project / ".env").write_text("DEBUG=true\nSECRET_KEY=from-the-dot-env-file-0123456789\n")
    result = _python(project, "import autoscaler.settings", ENV_FILE="", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert result.stderr.strip() == "configuration error: SECRET_KEY is not set: set it (50+ random characters)"


def test_the_filesystem_broker_keeps_every_folder_under_var_broker_made_when_celery_starts(project):
    code = "from autoscaler.celery import app; print(app.conf.broker_url)"
    result = _python(project, code, DEBUG="true", SECRET_KEY="s" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "filesystem://localhost//"
    made = [name for name in _files(project) if not name.startswith("autoscaler")]
    assert made == ["var", "var/broker", "var/broker/control", "var/broker/processed", "var/broker/queue"]


def test_a_local_run_prints_mails_through_the_log_and_links_them_to_the_local_address(project):
    code = "from autoscaler import settings as s; print(s.EMAIL_BACKEND, s.SITE_URL, s.CELERY_WORKER_REDIRECT_STDOUTS_LEVEL)"
    result = _python(project, code, DEBUG="true", SECRET_KEY="s" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["notifications.backends.LogEmailBackend", "http://127.0.0.1:8000", "INFO"]


def test_in_production_mail_links_use_site_url_else_the_first_allowed_host(project):
    code = "from autoscaler import settings as s; print(s.SITE_URL)"
    production = dict(DEBUG="false", SECRET_KEY="s" * 50, ALLOWED_HOSTS="scaler.example.com,.example.org")
    assert _python(project, code, **production).stdout.strip() == "https://scaler.example.com"
    assert _python(project, code, SITE_URL="https://ops.example.net/", **production).stdout.strip() == "https://ops.example.net"
