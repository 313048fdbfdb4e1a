"""A wall-clock budget for a training run: how many steps still fit, and how far the schedule has come.

A time-budgeted run should end its learning-rate schedule and its last evaluation together, at
the end of the budget: stopping early wastes time a laptop cannot spare, and stopping the schedule
before it has annealed costs accuracy. So the budget plans, before every step, how many more
steps fit in the time left, counting the evaluations they bring (one per epoch, on the held-out
set) and the final test evaluation, from the costs measured so far. The first step is not one of
those measures: it carries one-time costs (memory to allocate, kernels to choose), which on a busy
machine have made it take a minute where the next took seconds, and a plan made from it alone
stopped a run after that one step.
"""
from __future__ import annotations

import math
import time

__all__ = ["TimeBudget"]


class TimeBudget:
    """Seconds (or None: no limit) for one ``Trainer.fit`` call, every evaluation included.

    Args:
        seconds: the budget, or None (or ``math.inf``) for none.
        start_step: the optimizer steps taken before this ``fit`` (a resumed run).
        steps_per_epoch: optimizer steps in a full epoch.
        steps_left_in_epoch: steps still to go in the current epoch.
        batch_size: images per training step (for the first guess of an evaluation's cost).
        eval_images: images in each end-of-epoch evaluation.
        final_images: images the final test evaluation runs forward (twice the test set with
            flip TTA; 0 when the last epoch's evaluation is the test itself).

    Call ``trained(step)`` after each step's work and ``evaluated(seconds, images)`` after each
    evaluation; ``steps_left(step)`` is then the number of steps that still fit, and
    ``progress(step, planned)`` how far through its schedule the run should be.
    """

    def __init__(self, seconds: float | None, start_step: int, steps_per_epoch: int, steps_left_in_epoch: int,
                 batch_size: int, eval_images: int, final_images: int) -> None:
        self.seconds = seconds if seconds is not None and math.isfinite(seconds) else None  # inf: no budget
        self.start_step = start_step
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.steps_left_in_epoch = steps_left_in_epoch
        self.batch_size = batch_size
        self.eval_images, self.final_images = eval_images, final_images
        self.eval_spent = 0.0                 # seconds spent evaluating in this fit
        self.per_image: float | None = None   # seconds per evaluated image, once measured
        self.t0 = time.perf_counter()
        self.warm: tuple[float, float] | None = None  # (clock, eval_spent) when the first step ended

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def evaluated(self, seconds: float, images: int) -> None:
        """Record an evaluation: its time counts apart from training, and sets the cost per image."""
        self.eval_spent += seconds
        self.per_image = seconds / max(images, 1)

    def new_epoch(self) -> None:
        """A new epoch starts: all its steps are still to go."""
        self.steps_left_in_epoch = self.steps_per_epoch

    def stepped(self) -> None:
        self.steps_left_in_epoch = max(0, self.steps_left_in_epoch - 1)
        if self.warm is None:
            self.warm = (time.perf_counter(), self.eval_spent)

    def steps_left(self, step: int) -> float:
        """How many more training steps fit in the budget (``math.inf`` without one).

        With ``m`` more evaluations the steps fit in ``(left - m * eval - final) / per_step``,
        and they can reach at most the end of the ``m``-th epoch from here; the best ``m`` wins.
        """
        if self.seconds is None:
            return math.inf
        elapsed, steps = self.elapsed(), step - self.start_step
        left = self.seconds - elapsed
        if steps < 2 or self.warm is None:  # nothing measured yet but the first step's one-time costs
            return math.inf if left > 0 else 0.0
        since, eval_before = self.warm
        per_step = (time.perf_counter() - since - (self.eval_spent - eval_before)) / (steps - 1)
        per_image = self.per_image if self.per_image is not None else per_step / self.batch_size / 3
        epoch_eval, final = per_image * self.eval_images, per_image * self.final_images
        best, reach = 0.0, self.steps_left_in_epoch
        for m in range(1, 10_000):
            fit = (left - m * epoch_eval - final) / per_step
            if fit <= 0:
                break
            best = max(best, min(fit, reach))
            if fit <= reach:
                break
            reach += self.steps_per_epoch
        return math.floor(best)

    def out_of_time(self, step: int) -> bool:
        """True when not one more step (with the evaluations it brings) fits."""
        return self.steps_left(step) < 1

    def progress(self, step: int, planned: int) -> float:
        """How far through the run ``step`` is: of ``planned`` steps, or of the steps the budget
        lets the run take, whichever ends sooner."""
        total = min(planned, step + self.steps_left(step))
        return step / max(total, 1)
