"""A run that fits a wall-clock budget: its length measured while it trains.

With ``run.time_budget_min`` and no ``--epochs``/``--max-steps`` the run's
total steps are provisional (:data:`UNFITTED`) until the end of a short probe
in the warm-up (where the learning rate does not depend on the length yet),
then re-fitted at every checkpoint and epoch end from the average time per
step so far, validations and checkpoints included: the probe alone can be
several % off. The budget counts from the run's start, data preparation
included.
"""

from __future__ import annotations

import logging
import time

from handzoo.distributed import DistInfo, all_reduce_mean

log = logging.getLogger("handzoo")

UNFITTED = 10**9  # the provisional length before the first fit


class TimeBudget:
    """Fits and re-fits the total steps so training ends ``minutes`` after ``run_start``.

    Args:
        minutes: the budget.
        run_start: ``time.perf_counter()`` at the run's start.
        warmup_steps: the schedule's warm-up; the probe ends within it (8 to 40 steps).
        dist: under DDP every rank agrees on the fitted length.
    """

    def __init__(self, minutes: float, run_start: float, warmup_steps: int, dist: DistInfo) -> None:
        self.minutes, self.run_start, self.dist = minutes, run_start, dist
        self.probe_steps = max(8, min(warmup_steps, 40))
        self.probe_start = time.perf_counter()

    def step_done(self, step: int) -> None:
        """Call after every optimiser step; the timing starts after step 2 (the first pay for warm-up)."""
        if step == 2:
            self.probe_start = time.perf_counter()

    def due(self, step: int, checkpoint_now: bool, epoch_end: bool) -> bool:
        """Whether to fit now: at the probe's end, then at checkpoints and epoch ends."""
        return step == self.probe_steps or (step > self.probe_steps and (checkpoint_now or epoch_end))

    def fit(self, step: int) -> int:
        """Total steps such that training ends ``minutes`` after the run started (at least ``step``)."""
        now = time.perf_counter()
        per_step = (now - self.probe_start) / max(1, step - 2)
        left = self.minutes * 60.0 - (now - self.run_start)
        total = step + max(0, int(left / per_step))
        if self.dist.enabled:  # every rank must agree on the schedule
            total = round(all_reduce_mean(self.dist, float(total)))
        return max(total, step)

    def refit(self, step: int, total: int) -> int | None:
        """The new total when it should change (first fit, or more than 1 % off), else None."""
        first = total == UNFITTED
        fitted = self.fit(step)
        if not first:
            # The LR of the next step is already set from the old length:
            # two more steps let the schedule end on the new one.
            fitted = max(fitted, step + 2)
        if first or abs(fitted - total) > max(2, 0.01 * total):
            if not first:
                log.debug("time budget: re-fitted to %d steps at step %d", fitted, step)
            return fitted
        return None
