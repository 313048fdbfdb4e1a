"""Where the code runs and how hard it works: the device, the quick switch, seeding, memory."""
from __future__ import annotations

import ctypes
import os
import random
import sys

import torch

__all__ = ["get_device", "quick_mode", "seed_everything", "cpu_has_native_bfloat16", "keep_freed_memory",
           "QUICK_ENV"]

QUICK_ENV = "CBAM_COURSE_QUICK"


def get_device(prefer: str | None = None) -> torch.device:
    """The best device at hand: CUDA, then Apple's MPS, then the CPU.

    ``prefer`` ("cpu", "cuda", "mps") forces one; asking for one that is not there is an error
    that says what is available.
    """
    available = ["cpu"]
    if torch.cuda.is_available():
        available.insert(0, "cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        available.insert(1 if "cuda" in available else 0, "mps")
    if prefer is None:
        return torch.device(available[0])
    if prefer not in available:
        raise ValueError(f"Device {prefer!r} is not available here; available: {', '.join(available)}.")
    return torch.device(prefer)


def quick_mode() -> bool:
    """True when ``CBAM_COURSE_QUICK`` is set to 1/true/yes: notebooks shrink their heavy parts
    (stand-in data, a few steps) so that each runs in well under a minute on 2 CPU cores."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, torch's (CPU and CUDA) random generators, so CPU runs repeat exactly."""
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def cpu_has_native_bfloat16() -> bool:
    """True where the CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX), so that CPU
    autocast speeds training up; elsewhere bfloat16 is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def keep_freed_memory(limit_mib: int = 1024) -> bool:
    """Ask the C library's allocator (glibc on Linux) to keep memory that a training step frees,
    up to ``limit_mib`` MiB, for the next step, instead of handing it back to the system.

    Why: by default glibc returns freed memory at the top of its heap once more than ~32 MiB of
    it is free, and takes it back page by page when the next step needs it again. Each page
    taken back costs a page fault. For AttentionCNN at width 64, batch 64, one training step on
    the CPU took back 16-110 MiB that way (4,000-28,000 faults), 3-30 ms of a ~170 ms step,
    with or without CBAM; how much depends on where the process's memory happens to lie
    (docs/performance.md, section 1, "Page faults").

    The setting holds for the whole process and cannot be undone; the price is that the process
    keeps its peak memory (plus at most ``limit_mib``) until it exits. The Trainer calls this when
    it trains on the CPU; call it yourself before a training loop of your own. Returns True where
    the setting took effect (Linux with glibc), False elsewhere (nothing changes there). Calling
    it again is harmless; the last ``limit_mib`` holds.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, for one)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    # Setting one threshold switches off glibc's own adjustment of both, so set both: blocks
    # under 32 MiB (glibc's largest) come from the heap, and the heap shrinks only past the limit.
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, int(limit_mib) << 20))
