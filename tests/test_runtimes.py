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
from notebook_run import mode_env  # noqa: E402

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
