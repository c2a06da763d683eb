"""The shop's Locust suite: a weighted mix of personas, in one of three load shapes.

Run it headless against a running ``make demo`` with ``make loadtest`` (report,
then the invariant check), or by hand::

    .venv/bin/locust -f loadtests/locustfile.py --config loadtests/locust.conf --host http://127.0.0.1:8000
    .venv/bin/locust -f loadtests/locustfile.py --config loadtests/locust.conf --headless --shape flash-sale

Personas (``loadtests/users/``, one a file): ``Browser`` (weight 10),
``Buyer`` (3), ``FlashSaleBuyer`` (only in the flash-sale spike) and one
``Restocker``. Shapes: ``loadtests/shapes.py``. Every answer is checked
(``loadtests/check.py``); each order's place → final time is reported as a
request of type ``E2E``. Options below also read ``LOCUST_<NAME>`` variables
and ``loadtests/locust.conf``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from locust import events

# Locust puts this file's folder on sys.path; the personas import ``loadtests.check`` from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests.shapes import SHAPES, TrafficShape  # noqa: E402
from loadtests.users import Browser, Buyer, FlashSaleBuyer, Restocker  # noqa: E402

__all__ = ["Browser", "Buyer", "FlashSaleBuyer", "Restocker", "TrafficShape"]


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="steady",
        env_var="LOCUST_SHAPE",
        help="load shape: steady, ramp or flash-sale (loadtests/shapes.py)",
    )
    parser.add_argument(
        "--flash-sku",
        default="",
        env_var="LOCUST_FLASH_SKU",
        help="the flash sale SKU (default: LTD-001 if the catalog has it, else its first)",
    )
    parser.add_argument(
        "--staff-token",
        default="",
        env_var="LOCUST_STAFF_TOKEN",
        is_secret=True,
        help="staff API token for the restocker (manage.py issue_token admin)",
    )
    parser.add_argument(
        "--e2e-timeout",
        type=float,
        default=30,
        env_var="LOCUST_E2E_TIMEOUT",
        help="seconds a buyer waits for an order's decision before failing it",
    )
