"""tools/measure_runtimes.py: measures generated notebooks, keeps other modes' numbers, and marks
what nobody measured instead of inventing it."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import measure_runtimes  # noqa: E402
from cbam_course.grading.run import mode_env  # noqa: E402
from cbam_course.train.store import TRAINING_NOTE  # noqa: E402

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _course(root: Path) -> Path:
    for folder, code in (("notebooks", "import os\nassert os.environ['CBAM_COURSE_QUICK'] == '1'\n"
                                       "block = bytearray(64 * 1024 * 1024)  # 64 MiB the probe must see"),
                         ("exercises", "raise NotImplementedError('an untouched exercise cell')")):
        (root / folder).mkdir(parents=True)
        nb = new_notebook(metadata={"kernelspec": KERNELSPEC},
                          cells=[new_markdown_cell("# One"), new_code_cell(code)])
        nbformat.write(nb, root / folder / "01_one.ipynb")
    return root


def test_modes_map_to_the_course_switches():
    assert mode_env("quick")["CBAM_COURSE_QUICK"] == "1"
    laptop = mode_env("laptop")
    assert laptop["CBAM_COURSE_QUICK"] is None and laptop["CBAM_COURSE_PROFILE"] == "laptop"
    assert mode_env("full")["CBAM_COURSE_PROFILE"] == "full"
    assert "Agg" not in mode_env("full")["MPLBACKEND"]  # figures must reach the notebook


def test_measure_writes_the_table_and_keeps_other_modes(tmp_path):
    root = _course(tmp_path / "course")
    out = tmp_path / "runtimes.md"
    code = measure_runtimes.main(["--mode", "quick", "--root", str(root), "--out", str(out)])
    assert code == 1, "a failing notebook makes the run exit 1"
    text = out.read_text()
    data = measure_runtimes.load(out)
    nb = data["quick"]["runs"]["notebooks/01_one.ipynb"]
    assert nb["error"] is None and 0 < nb["seconds"] < 60
    assert nb["peak_mib"] >= 64, "the 64 MiB the notebook holds must show in its peak memory"
    assert "NotImplementedError" in data["quick"]["runs"]["exercises/01_one.ipynb"]["error"]
    row = next(line for line in text.splitlines() if line.startswith("| `notebooks/01_one.ipynb`"))
    assert row.count("not measured") == 2, row  # laptop and full: nobody ran them
    assert "cores" in nb["machine"] and "--mode quick" in nb["command"]

    # a later run of another mode, for one notebook, leaves the quick numbers alone
    data.setdefault("laptop", {"runs": {}})["runs"]["notebooks/01_one.ipynb"] = dict(nb, seconds=321.0)
    out.write_text(measure_runtimes.render(data))
    again = measure_runtimes.load(out)
    assert again["quick"] == data["quick"] and again["laptop"]["runs"]["notebooks/01_one.ipynb"]["seconds"] == 321.0
    assert "| 321.0 |" in out.read_text()


def test_the_guide_shows_the_scripts_table(tmp_path):
    run = {"seconds": 12.3, "peak_mib": 456, "error": None, "machine": "CPU, 2 cores", "date": "d",
           "command": "c", "data": None}
    data = {"quick": {"runs": {"notebooks/01_one.ipynb": run}}}
    guide = tmp_path / "instructors.md"
    guide.write_text("# Guide\n\n<!-- runtimes:begin -->\nold table\n<!-- runtimes:end -->\n\nAfter.\n")
    assert measure_runtimes.update_guide(guide, data)
    text = guide.read_text()
    assert "old table" not in text and "| `notebooks/01_one.ipynb` | 12.3 | 456 | not measured |" in text
    assert text.startswith("# Guide\n\n<!-- runtimes:begin -->\n") and text.endswith("<!-- runtimes:end -->\n\nAfter.\n")
    assert measure_runtimes.update_guide(guide, data) and guide.read_text() == text  # idempotent
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not measure_runtimes.update_guide(plain, data) and plain.read_text() == "no markers\n"


def _record(seconds: float, mib: int | None, machine: str = "Reference CPU, 2 cores") -> dict:
    return {"seconds": seconds, "peak_mib": mib, "error": None, "machine": machine, "date": "2026-11-26 10:00 UTC",
            "command": "c", "data": None, "load": 0.5}


def test_scaling_keeps_the_time_budget_of_laptop_trainings():
    budget = 600.0
    # quick mode and the light lessons scale with the CPU
    assert measure_runtimes.scale(10.0, "notebooks/05_x.ipynb", "quick", 1.5, budget) == 15.0
    assert measure_runtimes.scale(31.0, "notebooks/04_x.ipynb", "laptop", 2.0, budget) == 62.0
    # laptop lesson 05 trains two networks of 600 s each: only the other 15 s scale
    assert measure_runtimes.scale(1215.0, "notebooks/05_x.ipynb", "laptop", 2.0, budget) == 1230.0
    assert measure_runtimes.scale(3449.0, "notebooks/06_x.ipynb", "laptop", 2.0, budget) == 3000.0 + 449.0 * 2
    # a lesson that finished before its budgets could (few epochs): all of it scales
    assert measure_runtimes.scale(300.0, "notebooks/05_x.ipynb", "laptop", 2.0, budget) == 600.0
    from cbam_course.train.recipes import PROFILES
    assert measure_runtimes.laptop_budget() == PROFILES["laptop"].time_budget


def test_budgeted_trainings_match_the_lessons(tmp_path):
    """The tool's count of budgeted trainings is what the lessons' first screens (plan_lesson) count
    in laptop mode when the run store holds none of their runs: lesson 05's two, lesson 06's five."""
    from cbam_course.train.prepare import plan_lesson

    for prefix, trainings in measure_runtimes.BUDGETED_TRAININGS.items():
        lesson = next((ROOT / "notebooks").glob(f"{prefix}_*.ipynb"))
        code = "".join(c.source for c in nbformat.read(lesson, as_version=4).cells if c.cell_type == "code")
        assert f"plan_lesson({int(prefix)}, profile" in code
        # no CIFAR-10 in tmp_path: the store is not searched, and every run counts as a training
        plan = plan_lesson(int(prefix), "laptop", seeds=[0], data_root=tmp_path, store=tmp_path / "runs")
        assert plan.stored is None and plan.runs == trainings
        if prefix == "06":  # one seed outside quick mode unless the store holds more: 5 trainings
            assert "comparison_seeds(profile, data=(train_data, test_data), at_least=3 if QUICK else 1)" in code


def test_estimate_times_the_calibration_and_prints_the_scaled_table(tmp_path, capsys, monkeypatch):
    root = tmp_path / "course"
    (root / "notebooks").mkdir(parents=True)
    for nb in measure_runtimes.CALIBRATION:  # light stand-ins for lessons 01 and 02
        nbformat.write(new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
            new_markdown_cell("# A lesson"),
            new_code_cell("import os\nassert os.environ['CBAM_COURSE_QUICK'] == '1'")]), root / nb)
    nbformat.write(new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[new_markdown_cell("# 05")]),
                   root / "notebooks" / "05_training.ipynb")
    first, second = measure_runtimes.CALIBRATION
    data = {"quick": {"runs": {first: _record(0.5, 100), second: _record(0.5, 100),
                               "notebooks/05_training.ipynb": _record(2.0, 300)}},
            "laptop": {"runs": {"notebooks/05_training.ipynb": _record(1300.0, 3000, "Another CPU, 4 cores")}}}
    table = tmp_path / "runtimes.md"
    table.write_text(measure_runtimes.render(data))
    before = table.read_text()

    assert measure_runtimes.main(["--estimate", "--root", str(root), "--out", str(table)]) == 0
    text = capsys.readouterr().out
    assert table.read_text() == before, "an estimate writes nothing"
    ratio = float(text.split("times x ")[1].split(";")[0])
    assert ratio > 0 and "ESTIMATE for this machine" in text and "not a measurement" in text
    assert f"{first} and {second} in quick mode took" in text and "Reference CPU, 2 cores" in text
    row = next(line for line in text.splitlines() if line.startswith("| `notebooks/05_training.ipynb`"))
    cells = [c.strip() for c in row.split("|")[2:-1]]
    # The ratio is printed to two decimals, the table scales by the unrounded one: allow for both roundings.
    assert abs(float(cells[0]) - 2.0 * ratio) <= 0.51
    assert abs(float(cells[2]) - (1200 + 100 * ratio)) <= 1.01, "two 600 s budgets stay; the other 100 s scale"
    assert "- laptop: Another CPU, 4 cores (2026-11-26)" in text and "Full mode needs a GPU" in text

    # without recorded times for the calibration there is nothing to compare with: one line, exit 1
    table.write_text(measure_runtimes.render({"laptop": data["laptop"]}))
    assert measure_runtimes.main(["--estimate", "--root", str(root), "--out", str(table)]) == 1
    assert "has no quick-mode time" in capsys.readouterr().err


def test_render_only_rewrites_both_tables_with_their_machines(tmp_path):
    data = {"quick": {"runs": {"notebooks/01_one.ipynb": _record(5.2, 700)}}}
    root = tmp_path / "course"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "runtimes.md").write_text(measure_runtimes.render(data).replace("Measured on:", "old"))
    (root / "docs" / "instructors.md").write_text("# G\n<!-- runtimes:begin -->\nold\n<!-- runtimes:end -->\n")
    assert measure_runtimes.main(["--render-only", "--root", str(root)]) == 0
    for doc in ("runtimes.md", "instructors.md"):
        text = (root / "docs" / doc).read_text()
        assert "Measured on:\n\n- quick: Reference CPU, 2 cores (2026-11-26)\n- laptop: not measured" in text, doc
        assert "python tools/measure_runtimes.py --estimate" in text, doc
    assert measure_runtimes.load(root / "docs" / "runtimes.md") == data


def test_lessons_get_an_empty_store_unless_one_is_given_and_a_store_that_trains_fails(tmp_path):
    """Without --store each notebook sees an empty store of its own (a first run); with --store the
    times go in the "+store" column, and a notebook that still printed the lessons' training line
    counts as failed: those are not the times of a class with a prepared store."""
    root = tmp_path / "course"
    (root / "notebooks").mkdir(parents=True)
    code = ("import os, pathlib\nstore = pathlib.Path(os.environ['CBAM_COURSE_RUNS'])\n"
            "assert store.name == 'store' or (store.is_dir() and not any(store.iterdir())), store\n"
            "if (store / 'missing').exists():\n    print('cbam, seed 0: " + TRAINING_NOTE + "')\n")
    nbformat.write(new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[new_code_cell(code)]),
                   root / "notebooks" / "05_lesson.ipynb")
    out, store = tmp_path / "runtimes.md", tmp_path / "store"
    (store / "quick").mkdir(parents=True)
    assert measure_runtimes.main(["--mode", "quick", "--root", str(root), "--out", str(out)]) == 0
    assert measure_runtimes.main(["--mode", "quick", "--root", str(root), "--out", str(out), "--store", str(store),
                                  "--note", "A store made for the test."]) == 0
    data = measure_runtimes.load(out)
    assert set(data) == {"quick", "quick+store"}
    stored = data["quick+store"]["runs"]["notebooks/05_lesson.ipynb"]
    assert stored["error"] is None and stored["store"] == str(store)
    text = out.read_text()
    assert "| quick+store (s) |" in text and "A store made for the test." in text
    (store / "missing").mkdir()
    assert measure_runtimes.main(["--mode", "quick", "--root", str(root), "--out", str(out), "--store", str(store)]) == 1
    error = measure_runtimes.load(out)["quick+store"]["runs"]["notebooks/05_lesson.ipynb"]["error"]
    assert error.startswith("trained 1 run(s)") and "prepare" in error
