"""Learning-rate schedules as a multiplier of the base lr at each optimiser step.

* ``constant``: 1.
* ``cosine``: cosine annealing from 1 to ``min_factor`` over the run.
* ``late_cosine``: constant for ``constant_fraction`` of the run, then cosine
  (the seed report's run 3: 50 epochs constant, then 150 annealed).

All three start with a linear warm-up over ``warmup_steps``.
"""

from __future__ import annotations

import math


def lr_factor(
    step: int,
    total_steps: int,
    schedule: str = "constant",
    warmup_steps: int = 0,
    constant_fraction: float = 0.25,
    min_factor: float = 0.0,
) -> float:
    """Multiplier of the base learning rate before optimiser step ``step`` (0-based).

    Args:
        step: steps taken so far, 0 <= step < total_steps.
        total_steps: length of the run in optimiser steps.
        schedule: 'constant', 'cosine' or 'late_cosine'.
        warmup_steps: linear ramp from 1/(warmup_steps+1) to 1.
        constant_fraction: late_cosine only: the share of steps at full lr.
        min_factor: the factor the cosine ends at.
    """
    if schedule not in ("constant", "cosine", "late_cosine"):
        raise ValueError(f"unknown schedule {schedule!r}; expected constant, cosine or late_cosine")
    warm = 1.0
    if warmup_steps > 0 and step < warmup_steps:
        warm = (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return warm
    start = warmup_steps if schedule == "cosine" else max(warmup_steps, int(constant_fraction * total_steps))
    if step < start:
        return warm
    span = max(1, total_steps - start)
    progress = min(1.0, (step - start) / span)
    return warm * (min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress)))
