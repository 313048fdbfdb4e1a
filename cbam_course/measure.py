"""Measuring a module: parameters, FLOPs, and time side by side with another module."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "count_flops", "time_forward", "compare_time", "TimeComparison"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements, not tensors) in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_flops(module: nn.Module, x: torch.Tensor, backward: bool = False) -> int:
    """FLOPs of one forward (and backward, if asked) of ``module`` on ``x``.

    Counted by ``torch.utils.flop_counter``: matrix multiplies and convolutions, with one
    multiply-add counted as 2 FLOPs. Element-wise work (sigmoid, the attention's multiply,
    pooling) is not counted, so for attention modules this is a lower bound; time tells the rest.
    """
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


def compare_time(modules: dict[str, nn.Module], x: torch.Tensor, backward: bool = False,
                 repeats: int = 20, warmup: int = 3) -> TimeComparison:
    """Time several modules on the same input, interleaved round by round.

    Interleaving means that a burst of background load hits every module alike, so the ratios
    stay meaningful on a noisy laptop even when the absolute times do not. Returns medians.
    """
    if not modules:
        raise ValueError("compare_time needs at least one module.")
    times: dict[str, list[float]] = {n: [] for n in modules}
    for _ in range(warmup):
        for m in modules.values():
            _run(m, x, backward)
    for _ in range(repeats):
        for n, m in modules.items():
            _sync(x)
            t0 = time.perf_counter()
            _run(m, x, backward)
            _sync(x)
            times[n].append(time.perf_counter() - t0)
    return TimeComparison({n: sorted(t)[len(t) // 2] for n, t in times.items()})
