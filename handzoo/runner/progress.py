"""The training progress display: a rich bar on a terminal, a line every tenth of the run elsewhere.

The loss shown is the last one written to history.jsonl (the mean over the
logging window), so the screen and the file agree; before the first logged
step it reads ``-``, never a placeholder that looks like a divergence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def _loss_text(loss: float | None) -> str:
    return "-" if loss is None else f"{loss:.4f}"


class TrainingProgress:
    """Progress of one run, shown on rank 0 only (``enabled``).

    Args:
        console: a rich console (a bar when it is a terminal), or None (lines through ``say``).
        total: the run's total steps (may change: ``progress.total = n``).
        start: the step the run starts from (after a resume).
        images_per_step: batch size x processes, for the rate.
        say: prints one line (used where there is no terminal for a bar).
        enabled: False on the other ranks of a distributed run.
    """

    def __init__(
        self,
        console: Any,
        total: int,
        start: int,
        images_per_step: int,
        say: Callable[[str], None],
        enabled: bool = True,
    ) -> None:
        self.total, self.start = total, start
        self.images_per_step = images_per_step
        self.say = say
        self.shown = enabled
        self.t0 = self.t_steady = time.perf_counter()
        self.excluded = 0.0
        self.done = 0
        self.bar = None
        if enabled and console is not None and console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  {task.fields[rate]:.1f} img/s"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.task = self.bar.add_task("train", total=total, completed=start, loss="-", rate=0.0)

    def __enter__(self) -> TrainingProgress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def exclude(self, seconds: float) -> None:
        """Leave time spent outside training steps (validation, epoch checkpoints) out of the rate."""
        self.excluded += seconds

    def rate(self) -> float:
        """Training images per second since the second step (the first ones pay for warm-up)."""
        if self.done <= 2:
            return self.done * self.images_per_step / max(time.perf_counter() - self.t0, 1e-9)
        elapsed = time.perf_counter() - self.t_steady - self.excluded
        return (self.done - 2) * self.images_per_step / max(elapsed, 1e-9)

    def advance(self, step: int, loss: float | None) -> None:
        """One step done; ``loss`` is the last logged loss (None before the first log)."""
        self.done += 1
        if self.done == 2:
            self.t_steady, self.excluded = time.perf_counter(), 0.0
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=_loss_text(loss), rate=self.rate())
        elif self.shown and step % max(1, self.total // 10) == 0:
            eta = (self.total - step) / max(self.done, 1) * (time.perf_counter() - self.t0)
            self.say(
                f"step {step}/{self.total}  loss {_loss_text(loss)}  {self.rate():.1f} img/s  "
                f"ETA {eta / 60:.1f} min"
            )
