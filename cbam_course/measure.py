"""Measuring a module: parameters, FLOPs, and time side by side with another module."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from .i18n import tr

__all__ = ["count_parameters", "count_flops", "time_forward", "compare_time", "TimeComparison", "interleave"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements, not tensors) in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(module: nn.Module, x: torch.Tensor, backward: bool = False) -> int:
    """FLOPs of one forward (and backward, if asked) of ``module`` on ``x``.

    Counted by ``torch.utils.flop_counter``: matrix multiplies and convolutions, with one
    multiply-add counted as 2 FLOPs. Element-wise work (sigmoid, the attention's multiply,
    pooling) is not counted, so for attention modules this is a lower bound; time tells the rest.
    """
    from torch.utils.flop_counter import FlopCounterMode  # here: `import cbam_course` stays quick

    counter = FlopCounterMode(display=False)
    was_training = module.training
    module.train(backward)
    try:
        with counter:
            if backward:
                module(x).sum().backward()
            else:
                with torch.no_grad():
                    module(x)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops())


def _run(module: nn.Module, x: torch.Tensor, backward: bool) -> None:
    if backward:
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()
    else:
        with torch.no_grad():
            module(x)


def _sync(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    elif x.device.type == "mps":
        torch.mps.synchronize()


def time_forward(module: nn.Module, x: torch.Tensor, backward: bool = False,
                 repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds for one forward (plus backward if ``backward``) of ``module`` on ``x``."""
    return compare_time({"m": module}, x, backward=backward, repeats=repeats, warmup=warmup).seconds["m"]


@dataclass
class TimeComparison:
    """Median seconds per call for each module, measured interleaved on the same input."""

    seconds: dict[str, float]

    def ratio(self, name: str, baseline: str) -> float:
        """How many times as long ``name`` took as ``baseline``."""
        return self.seconds[name] / self.seconds[baseline]

    def __str__(self) -> str:
        base = min(self.seconds.values())
        return "\n".join(f"{n:>12}: {s * 1e3:8.2f} ms  ({s / base:.2f}x)" for n, s in self.seconds.items())


def interleave(runs: dict[str, Callable[[], object]], rounds: int, warmup: int = 2,
               block: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function (``rounds`` timed calls each), the functions taking turns.

    Interleaving means that a burst of background load hits every function alike, so the ratios
    stay meaningful on a noisy laptop even when the absolute times do not. With ``block`` > 1
    each turn is ``block`` calls in a row and the first of them is not timed: a training loop
    runs one model step after step, and a step that follows another model's finds the memory
    allocator and the caches in another state (docs/performance.md, section 1).
    """
    if not runs:
        raise ValueError(tr("interleave needs at least one function to time."))
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    timed_per_turn = block - 1 if block > 1 else 1
    for _ in range(-(-rounds // timed_per_turn)):
        for name, fn in runs.items():
            for i in range(block):
                t0 = time.perf_counter()
                fn()
                if block == 1 or i > 0:
                    times[name].append(time.perf_counter() - t0)
    return {name: t[:rounds] for name, t in times.items()}


def compare_time(modules: dict[str, nn.Module], x: torch.Tensor, backward: bool = False,
                 repeats: int = 20, warmup: int = 3) -> TimeComparison:
    """Time several modules on the same input, interleaved round by round (:func:`interleave`).

    Returns the median seconds per call of each.
    """
    if not modules:
        raise ValueError(tr("compare_time needs at least one module."))

    def call(m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            _sync(x)
            _run(m, x, backward)
            _sync(x)
        return run

    times = interleave({n: call(m) for n, m in modules.items()}, repeats, warmup=warmup)
    return TimeComparison({n: statistics.median(t) for n, t in times.items()})
