"""A wall-clock budget for a training run: when to stop, and how far the schedule has come."""
from __future__ import annotations

import time

__all__ = ["TimeBudget"]


class TimeBudget:
    """Seconds (or None: no limit) for one ``Trainer.fit`` call, evaluation included.

    ``out_of_time(step)`` says whether one more step plus the epoch's evaluation still fits; the
    evaluation's cost is the last one measured (``evaluated``), or before the first, a guess from
    the training speed (a forward pass costs about a third of a training step). ``progress``
    is how far through the run the one-cycle schedule should be: by steps or by time, whichever
    is further, so a run that a budget cuts short still ends its schedule.
    """

    def __init__(self, seconds: float | None, start_step: int, batch_size: int, test_images: int) -> None:
        self.seconds = seconds
        self.start_step = start_step
        self.batch_size = batch_size
        self.test_images = test_images
        self.eval_seconds: float | None = None
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def evaluated(self, seconds: float) -> None:
        """Record what the last evaluation took."""
        self.eval_seconds = seconds

    def out_of_time(self, step: int) -> bool:
        """True when the budget cannot fit one more step plus an evaluation."""
        if self.seconds is None:
            return False
        elapsed, steps = self.elapsed(), step - self.start_step
        if steps == 0:
            return elapsed >= self.seconds
        per_image = elapsed / (steps * self.batch_size)
        guess = self.eval_seconds if self.eval_seconds is not None else per_image * self.test_images / 3
        return elapsed + 1.2 * guess >= self.seconds

    def progress(self, step: int, planned: int) -> float:
        """The fraction of the run done at ``step`` of ``planned``, by steps or by time."""
        done = step / max(planned, 1)
        return max(done, self.elapsed() / self.seconds) if self.seconds else done
