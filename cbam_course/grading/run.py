"""Run a notebook top to bottom in a fresh kernel, within limits: the one way the course runs notebooks.

``make html`` (tools/build_html.py), ``make runtimes`` (tools/measure_runtimes.py) and the grader
(``python -m cbam_course grade``, :mod:`cbam_course.grading.grade`) all run notebooks through
:func:`execute`; :func:`run_notebook` is the tools' short form.

Modes (CONTRIBUTING.md, lesson 05's profile picker):

- ``quick``:  ``CBAM_COURSE_QUICK=1`` (and profile "quick"): the stand-in data, a few steps; what CI runs.
- ``laptop``: ``CBAM_COURSE_PROFILE=laptop``: real CIFAR-10, sized for a CPU in minutes.
- ``full``:   ``CBAM_COURSE_PROFILE=full``: the Day 50 lesson's network (width 64), for a GPU.

Real data is looked for where ``cbam_course.train.data`` looks (``$CBAM_COURSE_DATA``, else ``data/``).

Limits. Every run has a wall-clock limit for the whole notebook, kernel start included: a watchdog
thread kills the kernel's process group (the kernel and whatever it started) when it is reached,
and the run comes back with an error that says so. nbclient's per-cell timeout applies within it.
On Linux a memory limit (``RLIMIT_DATA``: the memory the kernel's code allocates, not the libraries
it maps) can be set on the kernel.

What keeps a run from hanging: the Output widget's messages (nbclient's mimic of an ipywidgets
``interact``) go out on a second shell connection that nobody polls (:class:`_OutputWidget`), so
no send touches the socket a reply is awaited on; every wait for a reply or an output polls in
slices of a second (:func:`_sliced`); the whole-notebook limit ends any run that still overstays,
naming the cell that was running; and the kernel is killed, not asked to shut down, once the run
is over (``shutdown_kernel="immediate"``). docs/performance.md, "Notebook runs that hung", has the
cause behind each of these.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.jsonutil import json_clean
from nbclient.output_widget import OutputWidget
from traitlets.config import Config

from ..i18n import N_
from ..runtime import PROFILE_ENV, QUICK_ENV
from . import sandbox

MODES = ("quick", "laptop", "full")
# Seconds a single cell may take before the run is called stuck, per mode (None: no limit but the notebook's).
CELL_TIMEOUT = {"quick": 600, "laptop": 3 * 3600, "full": None}
# Seconds a whole notebook may take, kernel start included, per mode: the run is stopped after that.
NOTEBOOK_LIMIT = {"quick": 1800, "laptop": 4 * 3600, "full": 4 * 3600}
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
MEMORY_CELL_TAG = "runtime-probe"
# Why a run stopped early (Execution.stop): English here, where the tools print it; the grader shows
# each in the learner's language (cbam_course/grading/grade.py).
CELL_TOO_LONG = N_("a cell ran longer than {seconds} s: {error}")
TIME_LIMIT = N_("stopped after {limit:g} s, the limit for the whole notebook")
TIME_LIMIT_IN_CELL = N_("stopped after {limit:g} s, the limit for the whole notebook (cell {cell} was running)")
KERNEL_STOPPED = N_("the kernel stopped: it crashed, was killed, or exited (os._exit, the memory limit)")
KERNEL_STOPPED_IN_CELL = N_("the kernel stopped while cell {cell} ran: it crashed, was killed, or exited "
                            "(os._exit, the memory limit)")
POLL_SLICE = 1.0  # seconds: the longest a lost wake-up can delay a reply or an output
_QUIET = logging.getLogger("cbam_course.grading.quiet")  # nbclient's warnings, when the caller wants none
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
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


def kernel_env(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` applied (None = unset): what a kernel starts with.

    The kernel gets it at start-up; this process's own ``os.environ`` is left alone, so several
    notebooks can run at once in threads."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _sliced(get_msg: Callable[..., Awaitable[dict]]) -> Callable[..., Awaitable[dict]]:
    """``get_msg`` that polls in slices of POLL_SLICE seconds until its timeout (None: for ever).

    Each slice starts a new poll, and a new poll reads the socket's state afresh: a message whose
    wake-up was lost is found within a slice instead of at the end of the whole timeout."""
    async def get(timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=min(POLL_SLICE, left))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
    return get


class _OutputWidget(OutputWidget):
    """nbclient's Output-widget mimic, sending its comm messages on a socket of its own.

    nbclient's sends them on the shell socket while a reply is awaited on it, which can lose the
    reply's wake-up (the module's docstring tells the whole story)."""

    def _publish_msg(self, msg_type: str, data: dict | None = None, metadata: dict | None = None,
                     buffers: list | None = None, **keys: Any) -> None:
        content = json_clean(dict(data=data or {}, comm_id=self.comm_id, **keys))
        msg = self.kernel_client.session.msg(msg_type, content=content, parent=self.parent_header,
                                             metadata=metadata or {})
        self.kernel_client.session.send(self.executor.comm_socket(), msg)


class _Watchdog:
    """Kills the kernel's process group once ``seconds`` have passed since it was created, and
    whatever is left of the group when the run is over."""

    def __init__(self, seconds: float | None):
        self.fired = False
        self._pid: int | None = None
        self._group = False
        self._lock = threading.Lock()
        self._timer = None if seconds is None else threading.Timer(seconds, self._fire)
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._pid = pid
            try:  # jupyter_client starts the kernel as the leader of a session of its own
                self._group = hasattr(os, "killpg") and os.getpgid(pid) == pid != os.getpgid(0)
            except OSError:
                self._group = False
            if self.fired:
                self._kill()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._kill()

    def _kill(self) -> None:
        if self._pid is None:
            return
        try:
            if self._group:
                os.killpg(self._pid, signal.SIGKILL)
            else:
                os.kill(self._pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except OSError:  # gone already, or not ours
            pass

    def stop(self) -> None:
        """Cancel the timer, and kill what the kernel left running (a process it started, say)."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            if self._group:
                self._kill()


class LimitedClient(NotebookClient):
    """A NotebookClient that cannot hang: the fixes above, a memory limit, a watchdog, and optionally
    no stored outputs (the grader needs none, and a cell printing for ever must not fill memory)."""

    def __init__(self, nb, *, memory_mib: int | None = None, keep_outputs: bool = True,
                 watchdog: _Watchdog | None = None, kernel_prefix: list[str] | None = None, **kw: Any):
        super().__init__(nb, **kw)
        self.kernel_prefix = kernel_prefix
        self.widget_registry["@jupyter-widgets/output"] = {"OutputModel": _OutputWidget}
        self.memory_mib, self.keep_outputs, self.watchdog = memory_mib, keep_outputs, watchdog
        self.cell_errors: list[tuple[int, str]] = []
        self.running: int | None = None
        self._comm_socket = None
        self.on_cell_executed = self._note_error

    def create_kernel_manager(self):
        """The kernel manager, starting the kernel behind ``kernel_prefix`` (the sandbox's launcher)."""
        km = super().create_kernel_manager()
        if self.kernel_prefix:
            prefix, plain = self.kernel_prefix, km.format_kernel_cmd
            km.format_kernel_cmd = lambda extra_arguments=None: prefix + plain(extra_arguments=extra_arguments)
        return km

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        await super().async_start_new_kernel(**kwargs)
        pid = self.km.provisioner.process.pid
        if self.memory_mib and not self.kernel_prefix and hasattr(__import__("resource"), "prlimit"):
            import resource

            limit = int(self.memory_mib) * 1024 * 1024
            try:
                resource.prlimit(pid, resource.RLIMIT_DATA, (limit, limit))
            except (OSError, ValueError):
                pass  # a system that refuses: the time limit still holds
        if self.watchdog is not None:
            self.watchdog.watch(pid)

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = _sliced(channel.get_msg)
        return kc

    def comm_socket(self):
        """A second shell connection, for the Output widget's messages only (never polled)."""
        if self._comm_socket is None:
            self._comm_socket = self.kc.connect_shell()
            self._comm_socket.linger = 0
        return self._comm_socket

    async def _async_cleanup_kernel(self) -> None:
        if self._comm_socket is not None:
            self._comm_socket.close()
            self._comm_socket = None
        await super()._async_cleanup_kernel()

    def output(self, outs, msg, display_id, cell_index):
        if self.keep_outputs:
            return super().output(outs, msg, display_id, cell_index)
        return None

    def _note_error(self, cell, cell_index: int, execute_reply: dict) -> None:
        content = (execute_reply or {}).get("content", {})
        if content.get("status") == "error":
            self.cell_errors.append((cell_index, f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"))


@dataclass
class Execution:
    """What :func:`execute` did: the wall time (kernel start included), why the run stopped early
    (``error``, None when every cell ran), whether the time limit or a dead kernel stopped it, the
    cell that was running then, the errors of cells that raised (allow_errors runs), and what the
    ``after`` step returned. ``stop``: when the limit, a cell's timeout or a dead kernel stopped the
    run, ``error`` as a template of this module and its fields, to be shown in another language."""
    seconds: float
    error: str | None = None
    stop: tuple[str, dict[str, Any]] | None = None
    timed_out: bool = False
    kernel_died: bool = False
    cell: int | None = None
    cell_errors: list[tuple[int, str]] = field(default_factory=list)
    result: Any = None


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # tracebacks come coloured
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def execute(nb: nbformat.NotebookNode, *, cwd: str | Path, env: dict[str, str], limit: float | None,
            cell_timeout: float | None = None, memory_mib: int | None = None, allow_errors: bool = False,
            keep_outputs: bool = True, quiet: bool = False, sandboxed: bool = False,
            after: Callable[[LimitedClient], Awaitable[Any]] | None = None) -> Execution:
    """Execute ``nb`` (in place) in a fresh kernel started in ``cwd`` with environment ``env``.

    ``limit``: seconds for the whole run (None: none); ``cell_timeout``: seconds per cell.
    ``allow_errors``: run every cell even after one raises (their errors are in ``cell_errors``).
    ``after``: a coroutine run with the client once every cell has run, in the same kernel; what it
    returns is ``result``. ``quiet``: the kernel's own stdout and stderr go nowhere. ``sandboxed``:
    the kernel starts through :mod:`cbam_course.grading.sandbox`, writable only in ``cwd``, and the
    memory limit is set there. Never raises for what the notebook does: a failing cell, a dead
    kernel, the limit.
    """
    sockets = tempfile.mkdtemp(prefix="cbam-kernel-")
    watchdog = _Watchdog(limit)
    # IPC sockets, not TCP ports: on a shared machine another process can take a TCP port between
    # the moment it is chosen and the moment the kernel binds it. A private folder per run.
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "kernel")}})
    client = LimitedClient(
        nb, config=config, timeout=cell_timeout, kernel_name="python3", allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}}, shutdown_kernel="immediate",
        startup_timeout=60 if limit is None else max(1, min(60, int(limit))), shell_timeout_interval=1,
        memory_mib=memory_mib, keep_outputs=keep_outputs, watchdog=watchdog,
        kernel_prefix=sandbox.command([Path(cwd), Path(sockets)], memory_mib) if sandboxed else None,
        **({"log": _QUIET} if quiet else {}))
    launch = {"env": env}
    if quiet:
        launch.update(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = Execution(seconds=0.0)
    finished = threading.Event()  # every cell and the `after` step ran: the limit no longer matters

    async def run() -> None:
        async with client.async_setup_kernel(**launch):
            info = await client.async_wait_for_reply(client.kc.kernel_info())
            if info is not None and "language_info" in info["content"]:
                nb.metadata["language_info"] = info["content"]["language_info"]
            for index, cell in enumerate(nb.cells):
                client.running = index
                await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            client.running = None
            if keep_outputs:
                client.set_widgets_metadata()
            if after is not None:
                done.result = await after(client)
            finished.set()

    start = time.perf_counter()
    try:
        asyncio.run(run())
    except CellTimeoutError as exc:
        done.stop = (CELL_TOO_LONG, {"seconds": client.timeout, "error": str(exc).splitlines()[0]})
    except (CellExecutionError, DeadKernelError, Exception) as exc:  # noqa: BLE001 - reported, not raised
        done.kernel_died = isinstance(exc, DeadKernelError)
        done.error = _one_line(exc)
    finally:
        watchdog.stop()
        atexit.unregister(client._cleanup_kernel)
        shutil.rmtree(sockets, ignore_errors=True)
    done.seconds = time.perf_counter() - start
    done.cell, done.cell_errors = client.running, client.cell_errors
    if watchdog.fired and not finished.is_set():
        done.timed_out, done.kernel_died = True, False
        done.stop = ((TIME_LIMIT, {"limit": limit}) if done.cell is None
                     else (TIME_LIMIT_IN_CELL, {"limit": limit, "cell": done.cell}))
    elif done.kernel_died:
        done.stop = (KERNEL_STOPPED, {}) if done.cell is None else (KERNEL_STOPPED_IN_CELL, {"cell": done.cell})
    if done.stop is not None:
        done.error = done.stop[0].format(**done.stop[1])
    return done


@dataclass
class Run:
    """One executed notebook: the notebook with its outputs, the wall time (kernel start included),
    the kernel's peak memory in MiB (None when not measured) and the error, if a cell failed."""
    notebook: nbformat.NotebookNode
    seconds: float
    peak_mib: float | None = None
    error: str | None = None


def run_notebook(path: Path, mode: str, timeout: int | None = -1, measure_memory: bool = False,
                 limit: float | None = -1, env: dict[str, str | None] | None = None) -> Run:
    """Execute the notebook at ``path`` in ``mode`` with a fresh kernel, working in its own folder.

    A failing cell does not raise: the run comes back with ``error`` set and the outputs so far.
    ``timeout`` is per cell in seconds (default: the mode's, see CELL_TIMEOUT; None: no limit);
    ``limit`` is for the whole notebook (default: the mode's, see NOTEBOOK_LIMIT; None: no limit).
    ``env``: more environment changes for the kernel (None = unset), on top of the mode's.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if measure_memory:
        probe = nbformat.v4.new_code_cell(_MEMORY_PROBE, metadata={"tags": [MEMORY_CELL_TAG]})
        if nb.nbformat_minor < 5:
            probe.pop("id", None)
        nb.cells.append(probe)
    done = execute(nb, cwd=path.parent.resolve(), env=kernel_env({**mode_env(mode), **(env or {})}),
                   limit=NOTEBOOK_LIMIT[mode] if limit == -1 else limit,
                   cell_timeout=CELL_TIMEOUT[mode] if timeout == -1 else timeout)
    peak = None
    if measure_memory:
        probe = nb.cells.pop()
        text = "".join(o.get("text", "") for o in probe.get("outputs", []) if o.get("output_type") == "stream")
        for line in text.splitlines():
            if line.startswith("PEAK_RSS_MIB"):
                peak = float(line.split()[1])
    return Run(nb, done.seconds, peak, done.error)
