"""Pick a CPU training run's set-up by timing it: memory layout, number format and thread count.

Which set-up trains fastest on a CPU depends on the chip in ways no flag tells: channels_last
helps oneDNN's convolutions on some CPUs and not on others, bfloat16 pays only where the CPU
computes it natively, and the thread count that wins depends on the cores and what else runs.
So a time-budgeted CPU run times a few training steps of each candidate on a copy of its network
(a few seconds), keeps the fastest, and says which and why (docs/performance.md, section 3b).
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..i18n import tr
from ..measure import interleave
from .cpu import cpu_has_native_bfloat16

__all__ = ["CpuSetup", "candidate_setups", "choose_cpu_setup"]


@dataclass(frozen=True)
class CpuSetup:
    """How a CPU run trains: ``channels_last`` memory, ``bfloat16`` autocast, ``threads``."""

    channels_last: bool
    bfloat16: bool
    threads: int

    def __str__(self) -> str:
        return (f"{'channels_last' if self.channels_last else 'NCHW'}, "
                f"{'bfloat16 autocast' if self.bfloat16 else 'float32'}, {self.threads} thread"
                f"{'s' * (self.threads != 1)}")


def candidate_setups(*, channels_last: bool | None = None, bfloat16: bool | None = None) -> list[CpuSetup]:
    """The set-ups worth timing here: both memory layouts in float32; bfloat16 too where the CPU
    computes it natively (elsewhere it is emulated and always slower); and, where the machine
    has more logical CPUs than torch uses (hyper-threads), that many threads as well.
    ``channels_last`` or ``bfloat16``, when given, fix that choice and leave the rest to time."""
    threads = [torch.get_num_threads()]
    if (os.cpu_count() or 1) > threads[0]:
        threads.append(os.cpu_count())
    if bfloat16 is None:
        formats = [False, True] if cpu_has_native_bfloat16() else [False]
    else:
        formats = [bfloat16]
    layouts = [False, True] if channels_last is None else [channels_last]
    return [CpuSetup(cl, bf16, n) for bf16 in formats for cl in layouts for n in threads]


def choose_cpu_setup(model: nn.Module, batch_size: int, num_classes: int = 10, image_size: int = 32,
                     rounds: int = 3, *, channels_last: bool | None = None,
                     bfloat16: bool | None = None) -> tuple[CpuSetup, str]:
    """Time ``rounds`` training steps of each candidate on a copy of ``model`` (interleaved, after a
    warm-up step each) and return the fastest set-up with a sentence that says why.
    ``channels_last`` and ``bfloat16`` fix a choice the caller has made (see :func:`candidate_setups`).

    ``model`` itself, torch's random state and its thread count are left as they were.
    """
    candidates = candidate_setups(channels_last=channels_last, bfloat16=bfloat16)
    threads_before = torch.get_num_threads()
    generator = torch.Generator().manual_seed(0)  # the run's own random numbers stay untouched
    x = torch.randn(batch_size, 3, image_size, image_size, generator=generator)
    y = torch.randint(0, num_classes, (batch_size,), generator=generator)

    def stepper(setup: CpuSetup):
        fmt = torch.channels_last if setup.channels_last else torch.contiguous_format
        net = copy.deepcopy(model).train().to(memory_format=fmt)
        images = x.contiguous(memory_format=fmt)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

        def step() -> None:
            torch.set_num_threads(setup.threads)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setup.bfloat16):
                loss = nn.functional.cross_entropy(net(images), y)
            loss.backward()
            opt.step()
        return step

    with torch.random.fork_rng(devices=[]):
        try:
            times = interleave({str(s): stepper(s) for s in candidates}, rounds=rounds, warmup=1)
        finally:
            torch.set_num_threads(threads_before)
    best = {str(s): min(t) for s, t in zip(candidates, times.values())}
    winner = min(candidates, key=lambda s: best[str(s)])
    timed = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in best.items())
    if len(candidates) == 1:
        return winner, tr("Set-up: {setup} (the only candidate here; a step took {seconds:.2f} s).",
                          setup=winner, seconds=best[str(winner)])
    return winner, tr("Set-up: {setup}, the fastest of {n} timed here (best of {rounds} steps of batch {batch} each: "
                      "{timed}).", setup=winner, n=len(candidates), rounds=rounds, batch=batch_size, timed=timed)
