"""``python -m cbam_course grade``: a class of generated submissions (exercise 02, built from the real
exercise and solution notebooks) graded into the exact gradebook rows, with the submissions left
byte for byte as they were; and the notebook runner's guards against hanging."""
from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import inspect
import io
import json
import queue
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

import learner_impls as li
from cbam_course import checks, i18n
from cbam_course.__main__ import main
from cbam_course.grading import grade as grading
from cbam_course.grading import report
from cbam_course.grading import run as run_module
from cbam_course.grading.run import _sliced, execute, kernel_env, mode_env

ROOT = Path(__file__).resolve().parents[1]
STEM = "02_channel_attention"
NOT_DONE = "{} still raises NotImplementedError — fill in the cells marked YOUR CODE HERE"
LINUX = sys.platform.startswith("linux")


# ---------------------------------------------------------------- building submissions

def _answer_sources() -> dict[str, str]:
    """The solution's answer cells by the name they define, solution markers dropped."""
    sol = nbformat.read(ROOT / "solutions" / f"{STEM}.ipynb", as_version=4)
    out = {}
    for cell in sol.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            name = "ChannelAttention" if "class ChannelAttention" in cell.source else "channel_attention_params"
            out[name] = "\n".join(line for line in cell.source.splitlines() if "SOLUTION" not in line)
    return out


def _exercise(answers: dict[str, str] | None = None, extra: list[tuple[int | None, str]] = ()) -> nbformat.NotebookNode:
    """Exercise 02 as shipped, with the answer cell defining each name in ``answers`` replaced, and
    ``extra`` code cells inserted (position, or None for the end; source)."""
    nb = nbformat.read(ROOT / "exercises" / f"{STEM}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            for name, source in (answers or {}).items():
                if f"class {name}" in cell.source or f"def {name}" in cell.source:
                    cell.source = source
    for position, source in extra:
        new = nbformat.v4.new_code_cell(source)
        new.pop("id", None) if nb.nbformat_minor < 5 else None
        nb.cells.insert(len(nb.cells) if position is None else position, new)
    return nb


def _source_of(*classes, alias: str) -> str:
    return ("import torch\nimport torch.nn as nn\nimport cbam_course\n\n"
            + "\n\n".join(inspect.getsource(c) for c in classes) + f"\n{alias} = {classes[-1].__name__}\n")


WRONG_PARAMS = "def channel_attention_params(in_channels, ratio):\n    return 2 * in_channels * in_channels // ratio\n"
CHEAT = """\
import cbam_course.checks as official
official.check_channel_attention = lambda cls: True
official.check_channel_attention_params = lambda fn: True
def check_channel_attention(cls):
    print("✔ ChannelAttention is correct: trust me")
    return True
check_channel_attention_params = check_channel_attention
print('["pass", "✔ forged"]')
with open("grades.csv", "w") as f:
    f.write("learner,notebook,check,status,detail\\nfrank,02_channel_attention.ipynb,check_channel_attention,pass,forged\\n")
import os
os.makedirs("feedback", exist_ok=True)
open("feedback/frank.md", "w").write("all correct")
open("notes.txt", "w").write("written where the notebook runs")
"""


def _write(folder: Path, name: str, nb_or_text) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb_or_text, str):
        (folder / name).write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, folder / name)


def _class(submitted: Path) -> None:
    answers = _answer_sources()
    nb_name = f"{STEM}.ipynb"
    _write(submitted / "alice", nb_name, _exercise(answers))
    _write(submitted / "bob", nb_name, _exercise())
    _write(submitted / "chen", nb_name, _exercise({
        "ChannelAttention": _source_of(li._CA, li.CASigmoidEachBranch, alias="ChannelAttention"),
        "channel_attention_params": WRONG_PARAMS}))
    _write(submitted / "dana", nb_name, _exercise({
        "ChannelAttention": _source_of(li._CA, li.CACrashes, alias="ChannelAttention")}))
    damaged = (ROOT / "exercises" / nb_name).read_text()
    _write(submitted / "eve", nb_name, damaged[: len(damaged) // 2])
    _write(submitted / "frank", nb_name, _exercise(extra=[(3, CHEAT), (None, CHEAT)]))
    _write(submitted / "grace", nb_name, _exercise(answers, extra=[(None, "import os\nos._exit(0)")]))
    _write(submitted / "heidi", nb_name, nbformat.read(ROOT / "exercises" / "03_spatial_attention.ipynb", as_version=4))
    _write(submitted / "ivan", f"ivan_4711_{STEM}.ipynb", _exercise(answers))  # renamed by an LMS
    _write(submitted / "ivan", "notes.ipynb", nbformat.v4.new_notebook())
    _write(submitted / "judy", nb_name, _exercise(answers, extra=[(5, "import sys\nsys.exit(1)")]))
    if LINUX:  # 8 GiB, above the --memory limit the test sets: a MemoryError, and the checks still run
        _write(submitted / "lena", nb_name, _exercise(answers, extra=[(5, "hog = bytearray(8 * 1024 ** 3)")]))
    (submitted / "ken").mkdir()  # handed in nothing


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


# ---------------------------------------------------------------- what the rows must say

def _verdict(checker, obj) -> tuple[str, str]:
    """The checker's own verdict on ``obj`` in this process, as the gradebook states it."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            ok = checker(obj)
    except AssertionError as err:
        return ("error" if err.__cause__ is not None else "fail"), grading.one_line(grading.hint(str(err)))
    line = printed.getvalue().strip().splitlines()[-1]
    return ("pass", line.removeprefix("✔").strip()) if ok else ("not_done", line.removeprefix("✘ not done yet:").strip())


def _defined(source: str, name: str):
    space = {"torch": torch, "nn": nn}
    exec(source, space)
    return space[name]


def _expected() -> list[tuple[str, ...]]:
    answers = _answer_sources()
    right_class = _defined(answers["ChannelAttention"], "ChannelAttention")
    right_params = _defined(answers["channel_attention_params"], "channel_attention_params")
    ca, params = "check_channel_attention", "check_channel_attention_params"
    nb = f"{STEM}.ipynb"
    both_right = [(ca, *_verdict(checks.check_channel_attention, right_class)),
                  (params, *_verdict(checks.check_channel_attention_params, right_params))]
    not_done = [(ca, "not_done", NOT_DONE.format("ChannelAttention")),
                (params, "not_done", NOT_DONE.format("channel_attention_params"))]
    rows = [("alice", nb, *r) for r in both_right]
    rows += [("bob", nb, *r) for r in not_done]
    named = lambda cls: type("ChannelAttention", (cls,), {})  # the grader names the notebook's definition
    rows += [("chen", nb, ca, *_verdict(checks.check_channel_attention, named(li.CASigmoidEachBranch))),
             ("chen", nb, params, *_verdict(checks.check_channel_attention_params, _defined(WRONG_PARAMS, "channel_attention_params")))]
    rows += [("dana", nb, ca, *_verdict(checks.check_channel_attention, named(li.CACrashes))), ("dana", nb, *not_done[1])]
    text = (ROOT / "exercises" / nb).read_text()
    with pytest.raises(nbformat.reader.NotJSONError) as damage:
        nbformat.reads(text[: len(text) // 2], as_version=4)
    unreadable = grading.one_line(f"cannot read the notebook (NotJSONError: {grading.one_line(damage.value, 200)}): "
                                  "ask for a fresh copy")
    rows += [("eve", nb, c, "error", unreadable) for c in (ca, params)]
    rows += [("frank", nb, *r) for r in not_done]
    grace_cell = len(_exercise(answers).cells)  # os._exit is the last cell
    rows += [("grace", nb, c, "error", f"the kernel stopped while cell {grace_cell} ran: it crashed, was killed, "
                                        "or exited (os._exit, the memory limit)") for c in (ca, params)]
    rows += [("heidi", nb, c, "error", "its cells are exercise 03_spatial_attention, not 02_channel_attention: "
                                       "the wrong notebook was handed in under this name") for c in (ca, params)]
    known = ", ".join(f"{p.stem}.ipynb" for p in sorted((ROOT / "solutions").glob("*.ipynb")))
    rows += [("ivan", f"ivan_4711_{nb}", *r) for r in both_right]
    rows += [("ivan", "notes.ipynb", "", "error",
              f"not one of the course's exercises: the file name must contain one of {known}")]
    rows += [("judy", nb, *r) for r in both_right]
    if LINUX:
        rows += [("lena", nb, *r) for r in both_right]
    return rows


def _read(path: Path) -> list[tuple[str, ...]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        assert next(reader) == ["learner", "notebook", "check", "status", "detail"]
        return [tuple(row) for row in reader]


# ---------------------------------------------------------------- the tests

def test_a_class_is_graded_into_exact_rows_and_the_submissions_are_untouched(tmp_path, capsys):
    submitted = tmp_path / "submitted"
    _class(submitted)
    before = _hashes(submitted)
    out = tmp_path / "gradebook" / "grades.csv"
    code = main(["grade", str(submitted), "--out", str(out), "--jobs", "2", "--timeout", "120",
                 "--memory", "2048", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert _read(out) == _expected()
    assert _hashes(submitted) == before, "the submissions must stay byte for byte as handed in"

    learners = 11 + LINUX
    assert f"graded {learners} learners, {learners} notebooks:" in printed  # ivan's two, ken's none
    table = (out.parent / "grades.md").read_text()
    assert "| alice | 2/2 |" in table and "| bob | 0/2 |" in table and "| eve | 0/2 (error) |" in table
    assert "| ken | – |" in table and "| ivan | 2/2 | not an exercise |" in table
    chen = (out.parent / "feedback" / "chen.md").read_text()
    assert "## 02_channel_attention.ipynb: 0 of 2 checks passed" in chen and "sigmoid to each branch" in chen
    assert "No exercise notebook was handed in." in (out.parent / "feedback" / "ken.md").read_text()
    assert sorted(p.name for p in (out.parent / "feedback").iterdir()) == sorted(
        f"{p.name}.md" for p in submitted.iterdir())


def test_an_endless_loop_is_stopped_at_the_time_limit(tmp_path, capsys):
    submitted = tmp_path / "submitted"
    nb = _exercise(_answer_sources(), extra=[(3, "while True:\n    pass")])
    _write(submitted / "loopy", f"{STEM}.ipynb", nb)
    out = tmp_path / "grades.csv"
    assert grading.grade_main([str(submitted), "--out", str(out), "--timeout", "8", "--jobs", "1",
                               "--no-progress"]) == 0
    detail = "stopped after 8 s, the limit for the whole notebook (cell 3 was running)"
    assert _read(out) == [("loopy", f"{STEM}.ipynb", c, "timeout", detail)
                          for c in ("check_channel_attention", "check_channel_attention_params")]
    assert "1 learners, 1 notebooks: 0 passes, 0 failures, 0 not done, 0 errors, 2 timeouts" in capsys.readouterr().out


@pytest.mark.parametrize("setup,message", [
    (lambda root: None, "is not a folder"),
    (lambda root: root.mkdir(), "nothing to grade"),
    (lambda root: (root.mkdir(), (root / "x.ipynb").write_text("{}")), "lie directly in"),
])
def test_usage_errors_exit_2_and_say_what_to_fix(tmp_path, capsys, setup, message):
    root = tmp_path / "submitted"
    setup(root)
    assert grading.grade_main([str(root), "--out", str(tmp_path / "g.csv")]) == 2
    assert message in capsys.readouterr().err


def test_the_gradebook_may_not_go_inside_the_submissions(tmp_path, capsys):
    (tmp_path / "submitted" / "alice").mkdir(parents=True)
    assert grading.grade_main([str(tmp_path / "submitted"), "--out", str(tmp_path / "submitted" / "g.csv")]) == 2
    assert "inside the submissions folder" in capsys.readouterr().err


def test_the_check_list_comes_from_the_solution_notebooks():
    exercises = grading.load_exercises(ROOT / "solutions")
    assert exercises[STEM].checks == [("check_channel_attention", "ChannelAttention"),
                                      ("check_channel_attention_params", "channel_attention_params")]
    se = exercises["06_se_comparison"]
    assert se.checks == [("check_se_block", "SEBlock"), ("check_se_parameters", "se_parameters"),
                         ("check_pooling_channel_attention", "PoolingChannelAttention")]  # exercise (c)
    # every check is one of the package's, judged in the grader's process
    assert all(c in checks.__all__ and c in checks.CHECKERS for ex in exercises.values() for c, _ in ex.checks)


def _chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_each_learner_gets_feedback_in_the_language_of_their_notebook(tmp_path, monkeypatch):
    """Exercise 02 with the same wrong answers, handed in by mei in the Chinese edition (its metadata
    says so) and by sam in the English one: mei's checks are judged in Chinese, in the worker thread
    that judges them, and her feedback is Chinese; sam's stays English; the gradebook stays English."""
    judged_in = []

    def spy(checker, target):  # runs in the judging thread asyncio.to_thread starts
        judged_in.append(i18n.language())
        return judge(checker, target)

    judge = grading.verdict
    monkeypatch.setattr(grading, "verdict", spy)
    monkeypatch.delenv(i18n.LANG_ENV, raising=False)
    wrong = {"ChannelAttention": _source_of(li._CA, li.CASigmoidEachBranch, alias="ChannelAttention"),
             "channel_attention_params": WRONG_PARAMS}
    chinese = _exercise(wrong)
    chinese.metadata["cbam_course"] = {"language": "zh"}
    submitted = tmp_path / "submitted"
    _write(submitted / "mei", f"{STEM}.ipynb", chinese)
    _write(submitted / "sam", f"{STEM}.ipynb", _exercise(wrong))
    out = tmp_path / "gradebook" / "grades.csv"
    summary = grading.grade(submitted, out, timeout=120, jobs=1, progress=False)
    assert summary["fail"] == 4 and sorted(judged_in) == ["en", "en", "zh", "zh"]

    mei = (out.parent / "feedback" / "mei.md").read_text(encoding="utf-8")
    assert mei.startswith("# 给 mei 的反馈") and f"## {STEM}.ipynb: 2 项检查中通过了 0 项" in mei
    assert mei.count("✘ 还不对") == 2 and "你提交的每个笔记本" in mei
    # (the hints are the checkers' own: in Chinese where the checks catalog has them, not asserted here)
    assert not any(english in mei for english in ("Feedback for", "checks passed", "✘ not right yet", "Each notebook"))
    sam = (out.parent / "feedback" / "sam.md").read_text(encoding="utf-8")
    assert sam.startswith("# Feedback for sam") and f"## {STEM}.ipynb: 0 of 2 checks passed" in sam
    assert sam.count("✘ not right yet") == 2 and not _chinese(sam)

    assert [r[:4] for r in _read(out)] == [(learner, f"{STEM}.ipynb", check, "fail") for learner in ("mei", "sam")
                                           for check in ("check_channel_attention", "check_channel_attention_params")]
    table = (out.parent / "grades.md").read_text(encoding="utf-8")
    assert table.startswith("# Gradebook") and "| mei | 0/2 |" in table and not _chinese(table.split("| mei |")[0])

    saved = [json.loads(p.read_text()) for p in sorted(grading.rows_folder(out).glob("*.json"))]
    assert {r["learner"]: {row["language"] for row in r["rows"]} for r in saved} == {"mei": {"zh"}, "sam": {"en"}}
    (out.parent / "feedback" / "mei.md").unlink()
    again = grading.grade(submitted, out, timeout=120, jobs=1, progress=False)  # resumed: nothing runs again
    assert again["graded"] == 0 and (out.parent / "feedback" / "mei.md").read_text(encoding="utf-8") == mei


def test_feedback_is_in_the_language_of_most_of_a_learners_notebooks(monkeypatch):
    """report.feedback_language: each notebook counted once, an unreadable one not at all; a tie, or
    nothing to count, is the grader's own language."""
    def row(notebook, lang, check="check_a"):
        return grading.Row("x", notebook, check, "pass", "", language=lang)

    monkeypatch.delenv(i18n.LANG_ENV, raising=False)
    assert report.feedback_language([row("a", "zh"), row("a", "zh", "check_b"), row("b", "en"), row("c", "zh")]) == "zh"
    assert report.feedback_language([row("a", "zh", c) for c in "xyz"] + [row("b", "en"), row("c", "en")]) == "en"
    assert report.feedback_language([row("a", "zh"), row("b", "")]) == "zh"
    assert report.feedback_language([row("a", "zh"), row("b", "en")]) == "en" == report.feedback_language([])
    monkeypatch.setenv(i18n.LANG_ENV, "zh")
    assert report.feedback_language([row("a", "zh"), row("b", "en")]) == "zh" == report.feedback_language([])
    assert report.feedback_language([row("b", "en")]) == "en"


def test_a_notebook_says_its_language_in_its_metadata_and_the_runners_stops_are_translated():
    nb = nbformat.v4.new_notebook()
    assert grading.notebook_language(nb) == "en" and grading.notebook_language(None) == "en"
    for odd in ("zh", {"language": "fr"}, {"language": ["zh"]}, None):
        nb.metadata["cbam_course"] = odd
        assert grading.notebook_language(nb) == "en", odd
    nb.metadata["cbam_course"] = {"language": "zh"}
    assert grading.notebook_language(nb) == "zh"
    english = "stopped after 8 s, the limit for the whole notebook (cell 3 was running)"
    assert run_module.TIME_LIMIT_IN_CELL.format(limit=8.0, cell=3) == english
    with i18n.speaking("zh"):
        chinese = i18n.tr(run_module.TIME_LIMIT_IN_CELL, limit=8.0, cell=3)
        pointer = grading.hint("X raised ValueError: bad\n" + i18n.tr(checks.judge.TRACEBACK_POINTER))
    assert _chinese(chinese) and "8" in chinese and "3" in chinese and pointer == "X raised ValueError: bad"


def test_import_cbam_course_loads_no_grader():
    code = ("import sys, cbam_course\n"
            "assert not [m for m in sys.modules if m.startswith('cbam_course.grading') or m == 'nbclient'], "
            "sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- the runner: no run may hang

def test_a_wait_polls_in_slices_so_a_lost_wakeup_costs_a_second(monkeypatch):
    """A reply whose wake-up was lost is found by the next slice's fresh poll, not at the timeout."""
    monkeypatch.setattr(run_module, "POLL_SLICE", 0.05)
    asked = []

    async def get_msg(timeout=None):  # a socket whose message never wakes the poll
        asked.append(timeout)
        await asyncio.sleep(timeout)
        raise queue.Empty

    with pytest.raises(queue.Empty):
        asyncio.run(_sliced(get_msg)(timeout=0.22))
    assert len(asked) >= 5 and max(asked) <= 0.05 and sum(asked) == pytest.approx(0.22, abs=0.03)

    async def found_on_the_third_poll(timeout=None):
        asked.append(timeout)
        if len(asked) < 3:
            await asyncio.sleep(timeout)
            raise queue.Empty
        return {"msg_type": "execute_reply"}

    asked.clear()
    assert asyncio.run(_sliced(found_on_the_third_poll)(timeout=None)) == {"msg_type": "execute_reply"}
    assert asked == [0.05, 0.05, 0.05]


@pytest.mark.skipif(not LINUX, reason="the memory limit is Linux's RLIMIT_DATA")
def test_the_memory_limit_turns_a_huge_allocation_into_a_memory_error(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (
        "hog = bytearray(4 * 1024 ** 3)", "small = bytearray(1024 ** 2)\nprint('still running')")])
    done = execute(nb, cwd=tmp_path, env=kernel_env(mode_env("quick")), limit=60, memory_mib=1024,
                   allow_errors=True)
    assert done.error is None and [i for i, _ in done.cell_errors] == [0]
    assert done.cell_errors[0][1].startswith("MemoryError")
    assert "still running" in nb.cells[1].outputs[0]["text"]


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_a_process_the_notebook_started_does_not_outlive_the_run(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import subprocess\nprint(subprocess.Popen(['sleep', '600']).pid)")])
    done = execute(nb, cwd=tmp_path, env=kernel_env(mode_env("quick")), limit=60)
    pid = int(nb.cells[0].outputs[0]["text"])
    assert done.error is None

    def alive() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False
    deadline = time.monotonic() + 5
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(), "the kernel's process group is killed when the run is over"


def test_an_interact_widget_talks_to_the_kernel_on_its_own_socket(tmp_path):
    """nbclient's Output-widget mimic sends a comm_msg while a cell's reply is awaited; on the shell
    socket that send can lose the reply's wake-up (cbam_course/grading/run.py). It goes elsewhere."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from ipywidgets import interact\n@interact(k=[1, 2])\ndef show(k=1):\n    print('k is', k)")])

    async def side_socket_used(client):
        return client._comm_socket is not None

    done = execute(nb, cwd=tmp_path, env=kernel_env(mode_env("quick")), limit=60, cell_timeout=30,
                   after=side_socket_used)
    assert done.error is None and done.result is True and done.seconds < 30
    assert "k is 1" in str(nb.metadata.get("widgets")) or nb.cells[0].outputs


def test_the_grading_benchmark_times_a_generated_class(capsys):
    """tools/grade_bench.py (docs/performance.md, "Grading a class"): a small class, right and
    mixed, graded and timed; the full run is 30 learners."""
    sys.path.insert(0, str(ROOT / "tools"))
    import grade_bench

    assert grade_bench.main(["--learners", "3", "--jobs", "2", "--mixed"]) == 0
    out = capsys.readouterr().out
    assert "3 notebooks: 3 passes, 1 failures, 2 not done, 0 errors" in out  # right, wrong, untouched
    assert re.search(r"grading: \d+\.\d\d s per notebook \(3 notebooks, --jobs 2", out)
