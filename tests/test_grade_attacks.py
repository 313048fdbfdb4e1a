"""The gradebook against a learner with bad intentions (generated submissions of exercise 02, no
network): verdicts that cannot be forged from inside the notebook, kernels that cannot reach the
grader, and results that survive anything one notebook does, the grader's own death included."""
from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import learner_impls as li
from cbam_course.grading import grade as grading
from cbam_course.grading import sandbox
from test_grade import STEM, _answer_sources, _exercise, _read, _source_of, _verdict, _write

ROOT = Path(__file__).resolve().parents[1]
CA, PARAMS = "check_channel_attention", "check_channel_attention_params"
NB = f"{STEM}.ipynb"
NAMESPACES, PROTECTION = sandbox.status()

# A wrong answer (the max branch dropped: SE, not CBAM) and the cells that try to make it pass.
AVG_ONLY = _source_of(li._CA, li.CAAvgOnly, alias="ChannelAttention")
FORGERIES = {
    "allclose": "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.Tensor.allclose = lambda *a, **k: True",
    "tensor_eq": "import torch\ntorch.Tensor.__eq__ = lambda self, other: True",
    "isclose": "import torch\ntorch.isclose = lambda a, b, *args, **k: torch.ones_like(a, dtype=torch.bool)",
    "assert_close": "import torch.testing\ntorch.testing.assert_close = lambda *a, **k: None",
    "abs": "import builtins\nbuiltins.abs = lambda x: 0 * x",
    "checks_module": ("import sys, types\nfake = types.ModuleType('cbam_course.checks')\n"
                      "fake.check_channel_attention = fake.check_channel_attention_params = lambda obj: True\n"
                      "sys.modules['cbam_course.checks'] = fake\n"
                      "import cbam_course\ncbam_course.checks = fake"),
}


def _grade(submitted: Path, out: Path, *extra: str) -> int:
    return grading.grade_main([str(submitted), "--out", str(out), "--jobs", "2", "--timeout", "120",
                               "--no-progress", *extra])


def _rows(out: Path, learner: str) -> dict[str, tuple[str, str]]:
    return {check: (status, detail) for who, _, check, status, detail in _read(out) if who == learner}


def test_a_forged_pass_stays_a_fail_whatever_the_notebook_patches(tmp_path):
    """Patching torch's comparisons, abs or the checkers' module in the kernel changes nothing: the
    judge compares in the grader's process. The wrong answer fails with the hint it gets in a lesson."""
    submitted, answers = tmp_path / "submitted", _answer_sources()
    _write(submitted / "right", NB, _exercise(answers))
    for name, forgery in FORGERIES.items():
        _write(submitted / f"forger_{name}", NB,
               _exercise({**answers, "ChannelAttention": AVG_ONLY}, extra=[(None, forgery)]))
    out = tmp_path / "grades.csv"
    assert _grade(submitted, out) == 0
    named = type("ChannelAttention", (li.CAAvgOnly,), {})
    status, hint = _verdict(grading_checks().check_channel_attention, named)
    assert status == "fail" and "that is SE, not CBAM" in hint
    assert _rows(out, "right")[CA][0] == "pass"
    for name in FORGERIES:
        assert _rows(out, f"forger_{name}")[CA] == ("fail", hint), name
        assert _rows(out, f"forger_{name}")[PARAMS][0] == "pass", name


def grading_checks():
    from cbam_course import checks
    return checks


class _Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts (for a few seconds)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port, self.accepted, self._stop = self.server.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            with contextlib.suppress(OSError):
                conn, _ = self.server.accept()
                self.accepted += 1
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.thread.join()
        self.server.close()


def test_a_notebook_cannot_reach_the_grader_or_the_machine(tmp_path):
    """Killing its parent or its process group (and, in namespaces, every process it may signal)
    ends only that notebook's run; in namespaces it cannot write outside its folder nor open a
    socket, even to 127.0.0.1. A correct learner in the same batch passes, and the grader finishes."""
    submitted, answers = tmp_path / "submitted", _answer_sources()
    outside, listener = tmp_path / "outside" / "written.txt", _Listener()
    outside.parent.mkdir()
    attacks = {
        "kills_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "kills_group": "import os, signal\nos.killpg(0, signal.SIGKILL)",
        "writes_outside": f"open({str(outside)!r}, 'w').write('escaped')",
        "opens_a_socket": (f"import socket\ns = socket.socket()\ns.settimeout(2)\n"
                           f"s.connect(('127.0.0.1', {listener.port}))"),
    }
    if NAMESPACES:  # without them kill(-1) would end this test's own processes: the grader says so instead
        attacks["kills_everything"] = "import os, signal\nos.kill(-1, signal.SIGKILL)"
    for name, attack in attacks.items():
        _write(submitted / name, NB, _exercise(answers, extra=[(None, attack)]))
    _write(submitted / "zz_right", NB, _exercise(answers))
    out = tmp_path / "grades.csv"
    try:
        assert _grade(submitted, out) == 0
    finally:
        listener.close()
    assert {c: s for c, (s, _) in _rows(out, "zz_right").items()} == {CA: "pass", PARAMS: "pass"}
    for name in ("kills_parent", "kills_group"):  # the kernel killed itself: its own run ends, graded
        assert {s for s, _ in _rows(out, name).values()} == {"error"}, name
        assert "the kernel stopped" in _rows(out, name)[CA][1], name
    if NAMESPACES:  # kill(-1) reached only its own namespace, where the kernel is PID 1: graded as written
        assert {s for s, _ in _rows(out, "kills_everything").values()} == {"pass"}
    table = (out.parent / "grades.md").read_text()
    assert f"Sandbox: {PROTECTION}." in table
    if NAMESPACES:
        assert not outside.exists(), "a notebook wrote outside its folder"
        assert listener.accepted == 0, "a notebook reached 127.0.0.1"
        assert "own PID, network and mount namespaces" in table
    else:
        assert "without namespaces" in table and "container" in table


def test_a_killed_grader_resumes_and_ends_with_the_same_gradebook(tmp_path):
    """Each notebook's rows are saved as it ends: the grader killed half-way, the same command grades
    only the rest, and the gradebook equals that of a run never interrupted (on two kernels at a
    time: the order in which notebooks end changes nothing). Killing the grader also ends its
    kernels (none is left running)."""
    submitted, answers = tmp_path / "submitted", _answer_sources()
    _write(submitted / "a_right", NB, _exercise(answers))
    _write(submitted / "b_slow", NB, _exercise(answers, extra=[(3, "import time\ntime.sleep(3)")]))
    _write(submitted / "c_stub", NB, _exercise())
    _write(submitted / "d_wrong", NB, _exercise({**answers, "ChannelAttention": AVG_ONLY}))
    command = [sys.executable, "-m", "cbam_course", "grade", str(submitted), "--timeout", "120", "--no-progress"]
    marker = tmp_path / "work"  # the grader's temporary folders, and so its kernels' HOME, lie here
    marker.mkdir()
    env = {**os.environ, "TMPDIR": str(marker)}
    out = tmp_path / "interrupted" / "grades.csv"
    rows = grading.rows_folder(out)
    grader = subprocess.Popen([*command, "--jobs", "1", "--out", str(out)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (rows.is_dir() and list(rows.glob("*.json"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # b_slow is now running, asleep
    grader.kill()
    grader.wait()
    saved = len(list(rows.glob("*.json")))
    assert 1 <= saved < 4 and not out.exists(), "the grader was to be killed half-way"
    time.sleep(0.5)
    assert not _processes_naming(marker), "the killed grader left a kernel running"
    again = subprocess.run([*command, "--jobs", "1", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{saved} taken from an earlier run" in again.stdout
    whole = tmp_path / "whole" / "grades.csv"
    done = subprocess.run([*command, "--jobs", "2", "--out", str(whole), "--fresh"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _read(out) == _read(whole) and len(_read(out)) == 8
    for path in (whole.parent / "feedback").iterdir():
        assert (out.parent / "feedback" / path.name).read_text() == path.read_text()


def _processes_naming(marker: Path) -> list[str]:
    """Processes whose command line or environment names ``marker``: the kernels (and their
    launchers) a grader started with its temporary folders there."""
    found, text = [], str(marker).encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text in (proc / "cmdline").read_bytes() or text in (proc / "environ").read_bytes():
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return found
