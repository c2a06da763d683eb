"""Load shapes: steady, ramp and a flash-sale spike, chosen by ``--shape`` (``LOCUST_SHAPE``).

One shape class, ``TrafficShape``, reads the usual ``--users``,
``--spawn-rate`` and ``--run-time`` (``use_common_options``) and the shape's
name, and each second tells Locust how many users of which personas to run:

- ``steady``: the everyday mix (browsers, buyers, one restocker) at ``--users``
  for the whole run;
- ``ramp``: the same mix, from one user up to ``--users`` over the first 80 %
  of the run, then held: where latency starts to climb is visible in the
  charts;
- ``flash-sale``: the mix at ``--users`` for a third of the run; for the
  middle third the users triple to ``3 × --users`` and the flash-sale crowd
  joins the mix. Locust shares them out by weight (the crowd's 30 against the
  browser's 10 and the buyer's 3, after the one restocker), so about seven in
  ten are flash-sale buyers on one scarce SKU, roughly twice ``--users``,
  while the usual mix keeps about its size; for the last third the crowd is
  gone.
"""

from __future__ import annotations

import math

from locust import LoadTestShape

from .users import Browser, Buyer, FlashSaleBuyer, Restocker

SHAPES = ("steady", "ramp", "flash-sale")
DEFAULT_RUN_TIME = 60  # seconds, when --run-time is not given


class TrafficShape(LoadTestShape):
    use_common_options = True

    def _options(self) -> tuple[str, int, float, int, bool]:
        options = self.runner.environment.parsed_options
        shape = getattr(options, "shape", "steady") or "steady"
        users = options.num_users or 1
        rate = options.spawn_rate or max(1.0, users / 10)
        return shape, users, rate, options.run_time or DEFAULT_RUN_TIME, bool(getattr(options, "staff_token", ""))

    def tick(self) -> tuple[int, float, list] | None:
        shape, users, rate, run_time, staff = self._options()
        t = self.get_run_time()
        if t >= run_time:
            return None
        mix = [Browser, Buyer, *([Restocker] if staff else [])]
        if shape == "ramp":
            grown = math.ceil(users * min(1.0, (t + 1) / (0.8 * run_time)))
            return max(1, grown), max(rate, users / (0.8 * run_time)), mix
        if shape == "flash-sale" and run_time / 3 <= t < 2 * run_time / 3:
            return users * 3, max(rate, users * 2.0), [*mix, FlashSaleBuyer]
        return users, rate, mix
