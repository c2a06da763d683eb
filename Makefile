# Every target works from a fresh clone: it creates .venv and installs requirements.txt first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench bench-batch loadtest ops-screenshots chaos clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# The browser tests (and make ops-screenshots) drive Debian's chromium (Playwright never downloads a browser):
# installed here as root with apt-get, else one line says how. It comes first, before the virtualenv: on a
# fresh machine the line is the first thing that happens (tests/test_first_run.py).
CHROMIUM ?= /usr/bin/chromium

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests (apt-get install chromium)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "error: the browser tests need $(CHROMIUM): run 'sudo apt-get install -y chromium' (or set CHROMIUM=/path/to/chromium), then run make $(or $(MAKECMDGOALS),install) again" >&2; \
	  exit 1; \
	fi

install: $(CHROMIUM) $(STAMP)

## make demo: the whole system on http://127.0.0.1:8000/ (Ctrl-C stops everything)
demo: $(STAMP)
	$(PY) manage.py devstack $(DEVSTACK_ARGS)

## make test: the whole suite against real PostgreSQL and NATS (embedded unless DATABASE_URL / NATS_URL)
test: $(CHROMIUM) $(STAMP)
	$(PY) -m devstack.embedded -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make bench: the performance lab (scenarios vs a baseline, saturation ladder, ceilings); --quick for a fast check
bench: $(STAMP)
	$(PY) -m devstack.embedded -- $(PY) -m loadtests.bench $(BENCH_ARGS)

## make loadtest: Locust, headless, against the running `make demo` (or LOCUST_HOST); report + invariant check
loadtest: $(STAMP)
	$(PY) -m loadtests $(LOADTEST_ARGS)

## make ops-screenshots: the ops page in chromium during and after make loadtest's steady run, against the
## running `make demo` or a devstack of its own; PNGs in test-artifacts/screenshots/
ops-screenshots: $(CHROMIUM) $(STAMP)
	CHROMIUM=$(CHROMIUM) $(PY) -m loadtests.ops_screenshots $(OPS_SCREENSHOTS_ARGS)

## make chaos: the fault catalogue against a devstack under load, each fault checked; rewrites docs/reliability.md
chaos: $(STAMP)
	$(PY) -m loadtests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .data

## make bench-batch: what one consumer batch costs in-process (CPU per batch and per message, sizes 1/10/100)
bench-batch: $(STAMP)
	$(PY) -m devstack.embedded -- $(PY) -m loadtests.bench.batchcost
