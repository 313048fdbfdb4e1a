"""Where the code runs and how hard it works: the device, the quick switch, seeding.

The course's environment variables are named here, and only here.
"""
from __future__ import annotations

import os
import random

import torch

from .i18n import LANG_ENV, tr  # CBAM_COURSE_LANG: "zh" for the Chinese edition (the i18n package reads it)

__all__ = ["get_device", "quick_mode", "seed_everything", "QUICK_ENV", "PROFILE_ENV", "DATA_ENV",
           "RUNS_ENV", "LANG_ENV"]

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
        raise ValueError(tr("Device {device} is not available here; available: {available}.", device=repr(prefer),
                            available=", ".join(available)))
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

