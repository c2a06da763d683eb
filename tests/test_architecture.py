"""The bounded contexts stay apart: checked with import-linter on every run."""

import re
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=BASE_DIR, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # Any number of contracts, none of them broken (the count grows as contracts are added).
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken", result.stdout), result.stdout
