"""A newcomer's first run: the Makefile's set-up step, and the README's commands as they are pasted.

The Makefile's browser step is run by the real ``make`` on a ``PATH`` of the
test's making (an ``id`` that says root or not, an ``apt-get`` or none) and a
``CHROMIUM`` path that is missing, with a stand-in virtualenv whose ``python``
only notes that it ran: so the test sees whether the suite would have started.
The README's curl snippet runs under ``bash`` as written, against a real web
server, relay and workers on the test database.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

from tests.pipeline import BASE_DIR, wait_for

README = (BASE_DIR / "README.md").read_text()
MAKE = shutil.which("make")
INSTRUCTION = re.compile(
    r"^error: the browser tests need \S+/chromium: run 'sudo apt-get install -y chromium' "
    r"\(or set CHROMIUM=/path/to/chromium\), then run make \S+ again$"
)


# --- the Makefile's browser step ------------------------------------------------------------------------


class Machine:
    """A folder that stands for a fresh machine: a PATH of chosen tools, a stand-in virtualenv, no chromium."""

    def __init__(self, tmp: Path, *, root: bool, apt_get: bool):
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.ran = tmp / "ran.log"  # what the stand-ins were asked to do, one line each
        self.chromium = tmp / "chromium" / "chromium"
        self.venv = tmp / "venv"
        self.tool("id", f"echo {0 if root else 1000}")
        if apt_get:  # "installs" chromium where the Makefile expects it
            mkdir, touch = shutil.which("mkdir"), shutil.which("touch")
            install = f"{mkdir} -p {self.chromium.parent} && {touch} {self.chromium}"
            self.tool("apt-get", f'case "$*" in *install*) {install};; esac')
        self.tool("python", "", folder=self.venv / "bin")  # the venv's python: a note that the suite started
        self.tool("python3", "", folder=self.tmp)  # $(PYTHON), which would create the virtualenv
        (self.venv / ".installed").touch()  # the virtualenv is up to date (newer than requirements.txt)

    def tool(self, name: str, body: str, folder: Path | None = None) -> None:
        folder = folder or self.bin
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(f'#!/bin/sh\necho "{path.relative_to(self.tmp)} $*" >> {self.ran}\n{body}\n')
        path.chmod(0o755)

    def make(self, target: str, *, venv: Path | None = None) -> subprocess.CompletedProcess:
        variables = [f"VENV={venv or self.venv}", f"CHROMIUM={self.chromium}", f"PYTHON={self.tmp / 'python3'}"]
        # A clean environment: no MAKEFLAGS of a `make test` running this very test, only this PATH.
        env = {"PATH": str(self.bin), "HOME": str(self.tmp)}
        command = [MAKE, "--no-print-directory", "-C", str(BASE_DIR), target, *variables]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.ran.read_text().splitlines() if self.ran.exists() else []


def stopped_with_the_instruction(done: subprocess.CompletedProcess, target: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert len(ours) == 1 and INSTRUCTION.match(ours[0]), done.stderr
    assert f"then run make {target} again" in ours[0]


@pytest.mark.parametrize("target", ["test", "install"])
def test_as_root_without_apt_get_make_stops_at_once_with_one_line_and_runs_no_test(tmp_path, target):
    machine = Machine(tmp_path, root=True, apt_get=False)

    done = machine.make(target)

    stopped_with_the_instruction(done, target)
    assert machine.calls() == ["bin/id -u"]  # neither the suite nor anything else ran


@pytest.mark.parametrize("target", ["test", "install"])
def test_without_root_make_never_calls_apt_get_and_stops_with_the_same_line(tmp_path, target):
    machine = Machine(tmp_path, root=False, apt_get=True)

    done = machine.make(target)

    stopped_with_the_instruction(done, target)
    assert machine.calls() == ["bin/id -u"]


def test_on_a_fresh_clone_the_browser_step_comes_before_the_virtualenv(tmp_path):
    machine = Machine(tmp_path, root=True, apt_get=False)
    fresh = tmp_path / "fresh-venv"

    done = machine.make("test", venv=fresh)

    stopped_with_the_instruction(done, "test")
    assert not fresh.exists() and machine.calls() == ["bin/id -u"]  # no virtualenv built before the failure


def test_as_root_with_apt_get_make_test_installs_chromium_then_runs_the_suite(tmp_path):
    machine = Machine(tmp_path, root=True, apt_get=True)

    done = machine.make("test")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "installing Debian's chromium for the browser tests" in done.stdout
    apt, suite = machine.calls()[1:3], machine.calls()[3:]
    assert apt == ["bin/apt-get update -qq", "bin/apt-get install -y -qq chromium"]
    assert len(suite) == 1 and re.match(r"venv/bin/python -m devstack\.embedded -- \S+ -m pytest", suite[0])


def test_with_chromium_in_place_make_goes_straight_to_the_work(tmp_path):
    machine = Machine(tmp_path, root=True, apt_get=True)
    machine.chromium.parent.mkdir()
    machine.chromium.touch()

    assert machine.make("install").returncode == 0
    assert machine.calls() == []
    assert machine.make("test").returncode == 0
    assert [c.split(" -- ")[0] for c in machine.calls()] == ["venv/bin/python -m devstack.embedded"]


@pytest.mark.parametrize(("target", "runs"), [("loadtest", "-m loadtests"), ("demo", "manage.py devstack")])
def test_what_needs_no_browser_runs_without_chromium(tmp_path, target, runs):
    machine = Machine(tmp_path, root=True, apt_get=False)

    done = machine.make(target)

    assert done.returncode == 0, done.stdout + done.stderr
    assert machine.calls() == [f"venv/bin/python {runs}"]


# --- the README's commands ------------------------------------------------------------------------------


def code_blocks(text: str) -> list[str]:
    """Return the shell blocks (```sh), the ones a reader pastes; the layout's tree is no command."""
    return re.findall(r"^```(?:sh|bash)\n(.*?)^```", text, re.S | re.M)


def commands_table(text: str) -> list[str]:
    """Return the first cell of each row of the README's Commands table."""
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(.+?)` \|", section, re.M)


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*)\s*:(?!=)", (BASE_DIR / "Makefile").read_text(), re.M))


PASTED = "\n".join(code_blocks(README) + commands_table(README))


def test_the_readme_runs_manage_py_one_way_and_names_only_real_commands():
    assert len(commands_table(README)) >= 15 and len(code_blocks(README)) >= 5  # the parsing found them
    assert PASTED.count("manage.py") == PASTED.count(".venv/bin/python manage.py") > 10

    named = set(re.findall(r"\.venv/bin/python manage\.py (\w+)", PASTED))
    named |= set(re.findall(r"`(?:\.venv/bin/python )?manage\.py (\w+)", README))  # named in the prose too
    assert {"devstack", "issue_token", "seed_demo", "verify_invariants"} <= named
    assert sorted(named - set(get_commands())) == []


def test_the_readme_names_only_real_make_targets_and_modules():
    targets = set(re.findall(r"(?:^|[\s`])make ([a-z][\w-]*)", README, re.M))
    assert {"demo", "test", "loadtest", "bench", "lint"} <= targets
    assert sorted(targets - make_targets()) == []

    modules = set(re.findall(r"\.venv/bin/python -m ([\w.]+)", PASTED))
    assert "loadtests.live_latency" in modules
    assert sorted(m for m in modules if importlib.util.find_spec(m) is None) == []


def readme_snippet(marker: str) -> str:
    (block,) = [b for b in code_blocks(README) if marker in b]
    return block


def traced(output: str) -> dict[str, str]:
    """Split ``bash -x`` output (PS4 a newline and '@@ ') into {command as run: what it printed}."""
    parts = {}
    for chunk in re.split(r"\n+@@+ ", "\n" + output)[1:]:
        command, _, printed = chunk.partition("\n")
        parts[command] = printed
    return parts


@pytest.mark.pipeline
def test_the_readme_curl_snippet_pasted_into_bash_places_an_order_and_fetches_it(
    pipeline, make_product, django_user_model, tmp_path
):
    from shop.models import Order

    make_product("COF-001", stock=10)
    django_user_model.objects.create_user("admin", password="admin", is_staff=True)
    # A checkout as the README's reader has it: .venv/bin/python and manage.py in the working folder, the
    # devstack's flow log under .data/devstack/ (here the test's web server writes it).
    home = tmp_path / "checkout"
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (home / ".venv" / "bin" / "python").chmod(0o755)
    (home / "manage.py").symlink_to(BASE_DIR / "manage.py")
    (home / ".data" / "devstack").mkdir(parents=True)
    pipeline.start()
    base = pipeline.web(1, LOG_FLOW="1", LOG_FLOW_FILE=str(home / ".data" / "devstack" / "flow.log"))

    snippet = readme_snippet("ORDER=$(")
    assert snippet.count("http://127.0.0.1:8000") >= 4
    script = "PS4=$'\\n@@ '\nset -e -x\n" + snippet.replace("http://127.0.0.1:8000", base)
    env = {**pipeline.env(), "DEVSTACK_STATE": str(home / "no-devstack.json")}
    done = subprocess.run(
        ["bash", "-c", script], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert done.returncode == 0, done.stdout

    order = Order.objects.get()
    ran = traced(done.stdout)
    assert ran[f"ORDER={order.id}"] == ""
    fetched = json.loads(ran[f"curl -s {base}/api/orders/{order.id}"])
    assert fetched["id"] == str(order.id) and fetched["status"] in ("pending", "confirmed")
    assert [(line["sku"], line["quantity"]) for line in fetched["lines"]] == [("COF-001", 2)]
    assert "POST /api/orders 202" in ran[f"grep {order.id} .data/devstack/flow.log"]
    (stock,) = [p for c, p in ran.items() if c.startswith(f"curl -s {base}/api/inventory/COF-001 -H 'Authorization")]
    assert json.loads(stock)["sku"] == "COF-001"
    (restocked,) = [p for c, p in ran.items() if c.endswith("""-d '{"quantity": 10}'""")]
    assert json.loads(restocked)["on_hand"] == 20
    # A pipeline's commands are traced as each starts: the products' first bytes follow one of the two.
    assert (ran[f"curl -s {base}/api/products"] + ran["head -c 300"]).startswith('{"items": [')

    # The order the snippet placed ends as its comment says.
    wait_for(lambda: Order.objects.filter(id=order.id, status="confirmed").exists(), 30, "the order confirmed")
    assert os.path.getsize(home / ".data" / "devstack" / "flow.log") > 0
