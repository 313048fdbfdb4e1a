"""Facts about the machine: whether bfloat16 is native and what the C library's allocator does
with memory a step frees (a training run needs both), and the one description of the machine
that benchmarks, stored runs and run times record."""
from __future__ import annotations

import ctypes
import datetime as _dt
import os
import platform
import sys

import torch

__all__ = ["cpu_has_native_bfloat16", "keep_freed_memory", "machine", "machine_line"]


def cpu_has_native_bfloat16() -> bool:
    """True where the CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX), so that CPU
    autocast speeds training up; elsewhere bfloat16 is emulated and slower than float32.

    False, too, where the kernels are capped below that (``ATEN_CPU_CAPABILITY=avx2`` or
    ``default``, or ``ONEDNN_MAX_CPU_ISA`` at an ISA without bfloat16): that is how an AVX-512
    machine runs a typical laptop's kernels (docs/performance.md), and it should then choose as
    that laptop would."""
    if os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower() in ("default", "avx2"):
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa and isa != "ALL" and not any(tag in isa for tag in ("BF16", "AMX")):
        return False
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
    it is free, and takes it back page by page when the next step needs it again; each page taken
    back costs a page fault, a few percent of a CPU training step (docs/performance.md, section 1,
    "Page faults", has the measurements).

    The setting holds for the whole process and cannot be undone; the price is that the process
    keeps its peak memory (plus at most ``limit_mib``) until it exits. ``accelerate`` calls this for a
    model on the CPU; call it yourself before a training loop of your own. Returns True where
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


def machine(load: bool = False) -> dict[str, str]:
    """Where a number was measured, as ``{"cpu", "cores", "threads", "kernels", "gpu", "torch",
    "python", "platform", "host", "date"}`` (plus ``"load"``, the load averages, with ``load``):
    the one description of this machine that benchmarks, stored runs and run times record."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    kernels = str(torch.backends.cpu.get_cpu_capability())  # AVX2 under ATEN_CPU_CAPABILITY=avx2
    kernels += "".join(f", {k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "NUMBA_CPU_NAME") if os.environ.get(k))
    found = {"cpu": cpu, "cores": str(cores), "threads": str(torch.get_num_threads()), "kernels": kernels,
             "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU",
             "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
             "host": platform.node(), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if load:
        found["load"] = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return found


def machine_line(found: dict[str, str] | None = None, full: bool = False) -> str:
    """:func:`machine` in one line: "CPU, N cores" (and the GPU, if any), or with ``full`` every
    fact a benchmark records: threads, kernels, versions, date and load."""
    m = found or machine(load=full)
    line = f"{m['cpu']}, {m['cores']} cores" + (f", GPU: {m['gpu']}" if m["gpu"] != "no GPU" else "")
    if full:
        line += (f", {m['threads']} torch threads, kernels {m['kernels']}; torch {m['torch']}, Python {m['python']}; "
                 f"{m['date']}" + (f"; load average {m['load']}" if "load" in m else ""))
    return line
