"""Imports point one way (DESIGN section 2): logs and notifications may use scaling's models;
scaling's own modules (models, admin, adapters, engine) never reach back into them. Only
the services, which orchestrate the apps, use all of them."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORCHESTRATORS = ("scaling/services/", "scaling/management/", "scaling/tasks.py", "scaling/migrations/")


def _imported(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_scaling_outside_its_services_imports_neither_logs_nor_notifications():
    offenders = []
    for path in sorted((ROOT / "scaling").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(ORCHESTRATORS):
            continue
        offenders += [f"{relative}: {name}" for name in _imported(path)
                      if name.split(".")[0] in ("logs", "notifications")]
    assert offenders == []


def test_logs_and_notifications_use_scaling_only_through_its_models_and_admin():
    offenders = []
    for app in ("logs", "notifications"):
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            offenders += [f"{relative}: {name}" for name in _imported(path)
                          if name.split(".")[0] == "scaling" and name not in ("scaling.models", "scaling.admin")]
    assert offenders == []
