"""The saturation ladder: offer more orders per second, step by step, until the pipeline stops keeping up.

Each step is open-loop load (orders leave on schedule whatever the answers'
pace) at a fixed rate for a few seconds, in one configuration of the pipeline
(the baseline, or a lever: ``--ladder`` climbs once in each, so their curves
and knees compare). A
step **keeps up** when every order it offered ends within a second or so of
the load: its end-to-end rate (orders final ÷ first order placed → last
decided) is at least ``KEEP_UP`` of the offered rate, and the orders still
pending when the load stops (the backlog) are fewer than one second's worth.
The ladder climbs by ``factor`` until a step does not keep up, or its
end-to-end rate stops rising; the **knee** is the highest offered rate that
was kept up with. A last step at half the knee gives the latency of a system
with room to spare (p99 place → confirmed at half the knee).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .scenarios import Bench, Figures, Scenario

KEEP_UP = 0.9  # a step keeps up when its end-to-end rate is at least this share of the offered rate
STILL_RISING = 1.05  # the next step must raise the end-to-end rate by at least 5 % to go on


@dataclass
class Ladder:
    """The steps of one ladder, the knee, and the step at half of it."""

    scenario: str
    steps: list[Figures] = field(default_factory=list)
    knee: float | None = None  # orders/s offered at the highest step that kept up
    knee_end_to_end: float | None = None  # and its measured end-to-end rate
    peak_end_to_end: float | None = None  # the highest end-to-end rate of any step
    half_knee: Figures | None = None
    half_knee_p99s: list[float | None] = field(default_factory=list)  # p99 of every run at half the knee
    stopped_because: str = ""


def keeps_up(step: Figures) -> bool:
    """Return whether a step's pipeline kept up with the rate offered."""
    rate = step.rate or 0.0
    return (step.end_to_end_per_s or 0.0) >= KEEP_UP * rate and step.backlog <= max(5.0, rate) and not step.errors


def climb(
    bench: Bench,
    scenario: Scenario,
    start: float,
    factor: float,
    seconds: float,
    max_steps: int,
    rounds: int = 1,
    say=print,
) -> Ladder:
    """Run the ladder in the scenario's configuration and return it."""
    ladder, rate = Ladder(scenario.name), start
    for i in range(max_steps):
        step = bench.paced(scenario, f"ladder-{scenario.name}-{i + 1}", rate, seconds)
        ladder.steps.append(step)
        ok = keeps_up(step)
        say(
            f"ladder {scenario.name}: offered {rate:.0f}/s -> end-to-end {step.end_to_end_per_s}/s, "
            f"p99 {step.p99_ms} ms, backlog {step.backlog}{'' if ok else ' (did not keep up)'}"
        )
        previous = ladder.steps[-2].end_to_end_per_s if len(ladder.steps) > 1 else None
        if ok:
            ladder.knee, ladder.knee_end_to_end = rate, step.end_to_end_per_s
        if not ok:
            ladder.stopped_because = f"at {rate:.0f}/s the pipeline did not keep up"
            break
        if previous and (step.end_to_end_per_s or 0) < STILL_RISING * previous:
            ladder.stopped_because = f"at {rate:.0f}/s the end-to-end rate stopped rising"
            break
        rate *= factor
    else:
        ladder.stopped_because = f"the last step ({max_steps}) still kept up: raise --ladder-steps"
    ladder.peak_end_to_end = max((s.end_to_end_per_s or 0.0) for s in ladder.steps) or None
    if ladder.knee:
        # Interference only adds latency: of ``rounds`` runs at half the knee, keep the lowest p99.
        halves = [
            bench.paced(scenario, f"half-knee-{scenario.name}-{r + 1}", ladder.knee / 2, seconds * 2)
            for r in range(rounds)
        ]
        ladder.half_knee = min(halves, key=lambda f: f.p99_ms if f.p99_ms is not None else float("inf"))
        ladder.half_knee_p99s = [f.p99_ms for f in halves]
        say(
            f"ladder {scenario.name}: half the knee, {ladder.knee / 2:.0f}/s: "
            f"p50 {ladder.half_knee.p50_ms} ms, p99 {ladder.half_knee.p99_ms} ms"
        )
    return ladder
