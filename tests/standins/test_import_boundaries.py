"""Who may import whom among the product, the stand-ins, the benchmarks and the tests.

The benchmarks are scripts over the product and the stand-ins (standins/), never over the test
suite; the stand-ins serve outside pytest; the product imports neither. Read from the source
with ``ast`` (imports inside functions count too), so nothing here has to be importable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("autoscaler", "scaling", "logs", "notifications", "add_redis_mon.py", "manage.py")


def python_files(*names: str) -> list[Path]:
    files = []
    for name in names:
        path = ROOT / name
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` of ``source`` names, at any depth."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def imports_of(source: str, packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imported_modules(source) if m.split(".")[0] in packages)


def offenders(files: list[Path], packages: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        names = imports_of(path.read_text(), packages)
        if names:
            found[str(path.relative_to(ROOT))] = names
    return found


def test_imports_are_found_at_module_level_and_inside_functions():
    source = (
        "import os, tests.redis_servers as servers\n"
        "from tests.fakes.heroku import installed_fake\n"
        "def run():\n"
        "    from standins.heroku import FakeHeroku\n"
        "    import testsuite\n"
        "from . import sibling\n"
    )
    assert imports_of(source, ("tests",)) == ["tests.fakes.heroku", "tests.redis_servers"]
    assert imports_of(source, ("standins",)) == ["standins.heroku"]


def test_no_benchmark_imports_the_tests():
    files = python_files("benchmarks")
    assert files, "no benchmark found: the test would prove nothing"
    assert offenders(files, ("tests",)) == {}


def test_the_stand_ins_import_neither_the_tests_nor_pytest():
    files = python_files("standins")
    assert {path.name for path in files} >= {"__init__.py", "heroku.py", "redis_servers.py"}
    assert offenders(files, ("tests", "pytest", "_pytest")) == {}


@pytest.mark.parametrize("name", PRODUCT)
def test_the_product_imports_no_stand_in_no_benchmark_and_no_test(name):
    files = python_files(name)
    assert files, f"{name} has no Python file: the product's layout changed, update PRODUCT"
    assert offenders(files, ("standins", "benchmarks", "tests")) == {}
