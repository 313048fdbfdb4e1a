"""Run a notebook top to bottom in a chosen mode: shared by build_html.py and measure_runtimes.py.

Modes (CONTRIBUTING.md, lesson 05's profile picker):

- ``quick``:  ``CBAM_COURSE_QUICK=1`` (and profile "quick"): the stand-in data, a few steps; what CI runs.
- ``laptop``: ``CBAM_COURSE_PROFILE=laptop``: real CIFAR-10, sized for a CPU in minutes.
- ``full``:   ``CBAM_COURSE_PROFILE=full``: the seed's model and epochs, for a GPU.

Real data is looked for where ``cbam_course.train.data`` looks (``$CBAM_COURSE_DATA``, else ``data/``).
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets.config import Config

MODES = ("quick", "laptop", "full")
QUICK_ENV, PROFILE_ENV = "CBAM_COURSE_QUICK", "CBAM_COURSE_PROFILE"
# Seconds a single cell may take before the run is called stuck, per mode (None: no limit).
CELL_TIMEOUT = {"quick": 600, "laptop": 3 * 3600, "full": None}
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
MEMORY_CELL_TAG = "runtime-probe"
_MEMORY_PROBE = """\
import resource as _r, sys as _s
_kib = 1 if _s.platform != "darwin" else 1 / 1024  # ru_maxrss: KiB on Linux, bytes on macOS
print("PEAK_RSS_MIB", max(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss, _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss) * _kib / 1024)
"""


def mode_env(mode: str) -> dict[str, str | None]:
    """The environment changes for ``mode`` (None = unset), for the kernel that runs the notebook."""
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}: choose one of {', '.join(MODES)}.")
    # Figures must reach the notebook: an inherited MPLBACKEND=Agg (as `make test` sets) would hide them.
    env = {"MPLBACKEND": INLINE_BACKEND, PROFILE_ENV: mode}
    env[QUICK_ENV] = "1" if mode == "quick" else None
    return env


@contextlib.contextmanager
def environment(changes: dict[str, str | None]):
    """Apply ``changes`` to os.environ (the kernel inherits it at start-up), then restore it."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def machine() -> str:
    """The CPU model and usable cores (and the GPU, if any): what the times were measured on."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        found = re.search(r"^Model name:\s*(.+)$", out, re.M)
        model = found.group(1).strip() if found else model
    except (OSError, subprocess.CalledProcessError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{model}, {cores} cores"
    if shutil.which("nvidia-smi"):
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip().splitlines()
        if gpu:
            text += f", GPU: {gpu[0]}"
    return text


@dataclass
class Run:
    """One executed notebook: the notebook with its outputs, the wall time (kernel start included),
    the kernel's peak memory in MiB (None when not measured) and the error, if a cell failed."""
    notebook: nbformat.NotebookNode
    seconds: float
    peak_mib: float | None = None
    error: str | None = None


def run_notebook(path: Path, mode: str, timeout: int | None = -1, measure_memory: bool = False) -> Run:
    """Execute the notebook at ``path`` in ``mode`` with a fresh kernel, working in its own folder.

    A failing cell does not raise: the run comes back with ``error`` set and the outputs so far.
    ``timeout`` is per cell in seconds (default: the mode's, see CELL_TIMEOUT; None: no limit).
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if measure_memory:
        probe = nbformat.v4.new_code_cell(_MEMORY_PROBE, metadata={"tags": [MEMORY_CELL_TAG]})
        if nb.nbformat_minor < 5:
            probe.pop("id", None)
        nb.cells.append(probe)
    sockets = tempfile.mkdtemp(prefix="cbam-kernel-")
    # IPC sockets, not TCP ports: on a shared machine another process can take a TCP port between
    # the moment it is chosen and the moment the kernel binds it, and the run then waits forever.
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
    client = NotebookClient(nb, config=config, timeout=CELL_TIMEOUT[mode] if timeout == -1 else timeout,
                            kernel_name="python3", resources={"metadata": {"path": str(path.parent.resolve())}})
    error = None
    start = time.perf_counter()
    with environment(mode_env(mode)):
        try:
            client.execute()
        except CellTimeoutError as exc:
            error = f"a cell ran longer than {client.timeout} s: {str(exc).splitlines()[0]}"
        except (CellExecutionError, DeadKernelError) as exc:
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # tracebacks come coloured
            lines = [line for line in text.splitlines() if line.strip()]
            error = lines[-1] if lines else type(exc).__name__
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
    seconds = time.perf_counter() - start
    peak = None
    if measure_memory:
        probe = nb.cells.pop()
        text = "".join(o.get("text", "") for o in probe.get("outputs", []) if o.get("output_type") == "stream")
        for line in text.splitlines():
            if line.startswith("PEAK_RSS_MIB"):
                peak = float(line.split()[1])
    return Run(nb, seconds, peak, error)
