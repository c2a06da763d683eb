"""The start-up heap of a long-running process is frozen out of the garbage collector's walks."""

import gc
import os
import subprocess
import sys
from pathlib import Path

from events import heap

ROOT = Path(__file__).resolve().parent.parent.parent
FROZEN_AFTER_IMPORT = "import gc, config.wsgi; print(gc.get_freeze_count())"


def test_freezing_moves_what_exists_into_the_permanent_generation(settings):
    settings.GC_FREEZE = True
    try:
        heap.freeze_startup()
        assert gc.get_freeze_count() > 10_000  # Django, the apps, pytest: all of it
    finally:
        gc.unfreeze()


def test_gc_freeze_off_leaves_the_heap_to_the_collector(settings):
    settings.GC_FREEZE = False
    heap.freeze_startup()
    assert gc.get_freeze_count() == 0


def frozen_in_a_web_process(**env: str) -> int:
    # The WSGI module is what every web worker imports; no server needed to see what it leaves frozen.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "OPS_HISTORY_MINUTES": "0", **env}
    done = subprocess.run(
        [sys.executable, "-c", FROZEN_AFTER_IMPORT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_a_web_process_starts_frozen_unless_told_otherwise():
    assert frozen_in_a_web_process() > 50_000
    assert frozen_in_a_web_process(GC_FREEZE="0") == 0
