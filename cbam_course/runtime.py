"""Where the code runs and how hard it works: the device, the quick switch, seeding, the machine.

The course's environment variables are named here, and only here.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import random

import torch

__all__ = ["get_device", "quick_mode", "seed_everything", "machine", "machine_line", "QUICK_ENV", "PROFILE_ENV", "DATA_ENV",
           "RUNS_ENV"]

QUICK_ENV = "CBAM_COURSE_QUICK"      # 1: every notebook in quick mode, whatever else is set (the tests)
PROFILE_ENV = "CBAM_COURSE_PROFILE"  # quick, laptop or full: the mode of a whole class (README)
DATA_ENV = "CBAM_COURSE_DATA"        # the folder that holds CIFAR-10
RUNS_ENV = "CBAM_COURSE_RUNS"        # the run store's folder


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
    """True when ``CBAM_COURSE_QUICK`` is set to 1/true/yes, or ``CBAM_COURSE_PROFILE`` is "quick":
    notebooks shrink their heavy parts (stand-in data, a few steps) so that each runs in well
    under a minute on 2 CPU cores."""
    return (os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
            or os.environ.get(PROFILE_ENV, "").strip().lower() == "quick")


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, torch's (CPU and CUDA) random generators, so CPU runs repeat exactly."""
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


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
