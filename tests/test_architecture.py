"""The architecture holds: the import contracts are kept, and they would catch each arrow they forbid."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PACKAGES = ["shop", "inventory", "events", "accounts", "config", "demo", "staff", "ops", "web", "devstack"]
LINT = Path(sys.executable).with_name("lint-imports")
APPS = ["shop", "inventory", "accounts", "demo", "staff", "ops"]


def sources(*packages: str):
    """Yield (path, syntax tree) of every module of ``packages`` but their tests and migrations."""
    for package in packages:
        for path in sorted((BASE_DIR / package).rglob("*.py")):
            if not {"tests", "migrations"} & set(path.relative_to(BASE_DIR).parts):
                yield path.relative_to(BASE_DIR).as_posix(), ast.parse(path.read_text())


def lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True)


def test_import_contracts_are_kept():
    result = lint(BASE_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    # Any number of contracts, none of them broken (the count grows as contracts are added).
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken", result.stdout), result.stdout


# One forbidden import per contract, each added to a copy of the tree: (module, line, the contract it breaks,
# the arrow the report shows).
VIOLATIONS = [
    ("web/api.py", "from shop import models", "layers: apps above contexts above plumbing", "web.api -> shop.models"),
    ("events/observe.py", "from . import consumer", "no import cycle inside any package", ".observe -> .consumer"),
    ("events/outbox.py", "import inventory.models", "events is machinery: it imports no app", "events.outbox ->"),
    ("events/bus.py", "from devstack import state", "events imports no dev stack", "events.bus -> devstack.state"),
    ("devstack/process.py", "import events.base", "the dev stack imports no app", "devstack.process -> events.base"),
    ("shop/views.py", "from config import settings", "no app imports config", "shop.views -> config"),
    (
        "inventory/api.py",
        "import shop.selectors",
        "shop and inventory are independent",
        "inventory.api -> shop.selectors",
    ),
    ("staff/views.py", "from shop import live", "staff and ops reach the contexts only", "staff.views -> shop.live"),
    (
        "ops/selectors.py",
        "from inventory import models",
        "staff and ops reach the contexts",
        "ops.selectors -> inventory",
    ),
]


def test_each_contract_breaks_on_the_import_it_forbids(tmp_path):
    shutil.copy(BASE_DIR / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(BASE_DIR / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc", "static"))
    for module, line, _, _ in VIOLATIONS:
        with open(tmp_path / module, "a") as source:
            source.write(f"\n\ndef _forbidden():\n    {line}  # noqa\n")

    result = lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    report = re.sub(r"\s*\n\s*", " ", result.stdout.split("Broken contracts", 1)[1])
    for module, _, contract, arrow in VIOLATIONS:
        assert contract in report, f"{contract!r} not broken by {module}"
        assert arrow in report, f"{arrow!r} not reported"
    counts = re.search(r"Contracts: (\d+) kept, (\d+) broken", result.stdout)
    assert counts and counts.group(1) == "0", result.stdout  # every contract caught its own


def test_events_knows_no_app_by_name_either():
    """What the bus needs of the apps comes from the settings (EVENT_CONSUMERS, EVENT_PUBLISHERS, ...)."""
    named = [
        (path, node.lineno, node.value)
        for path, tree in sources("events")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(node.value == app or node.value.startswith((f"{app}.", f"{app}_")) for app in APPS)
    ]
    assert named == []


# Django's own idiom (the settings module to load) and prometheus_client's variable, which the library
# reads from the environment itself; everything else comes through config/settings.py (django-environ).
ENVIRONMENT_READERS = {"config/asgi.py", "config/wsgi.py", "events/metrics.py"}


def test_only_the_settings_read_the_environment():
    readers = {
        path
        for path, tree in sources(*APPS, "web", "events", "config")
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and node.attr in {"environ", "getenv"}
    }
    assert readers == ENVIRONMENT_READERS


def test_the_settings_read_no_file_and_signal_no_process():
    """A running devstack reaches the settings as variables (devstack/state.py, from manage.py), not at import."""
    (tree,) = [tree for path, tree in sources("config") if path == "config/settings.py"]
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    calls = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    assert not {name for name in imported if name.split(".")[0] in {"devstack", "os", "json"}}
    assert not calls & {"open", "read_text", "read_bytes", "kill", "killpg", "load", "loads"}
