"""exercises/ is what solutions/ generates; the generator clears solutions as nbgrader does."""
import contextlib
import io
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import exercises as ex  # noqa: E402

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


@pytest.mark.parametrize("edition", ["", "zh"])
def test_committed_exercises_are_generated_from_solutions(edition):
    stale = ex.stale_exercises(ROOT / "solutions" / edition, ROOT / "exercises" / edition)
    exercises, solutions = (f"{folder}/{edition}/".replace("//", "/") for folder in ("exercises", "solutions"))
    assert not stale, (f"{exercises} is out of date with {solutions}:\n  " + "\n  ".join(stale)
                       + "\nFix: run `make exercises` and commit the result.")


@pytest.mark.parametrize("edition", ["", "zh"])
def test_every_solution_has_regions_and_a_check(edition):
    solutions = sorted((ROOT / "solutions" / edition).glob("*.ipynb"))
    assert solutions, "solutions/ holds no notebooks"
    for path in solutions:
        nb = nbformat.read(path, as_version=4)
        assert any(ex.BEGIN in c.source for c in nb.cells), f"{path.name} has no solution region"
        assert any("check_" in c.source for c in nb.cells if c.cell_type == "code"), f"{path.name} checks nothing"


# ---------------------------------------------------------------- clear_solutions

def test_region_at_top_level():
    src = "import torch\n### BEGIN SOLUTION\nx = 1\ny = 2\n### END SOLUTION\nprint(x)"
    assert ex.clear_solutions(src) == f"import torch\n{STUB}\nprint(x)"


def test_region_keeps_the_markers_indentation_inside_methods():
    src = ("class A:\n"
           "    def f(self):\n"
           "        ### BEGIN SOLUTION\n"
           "        if True:\n"
           "            return 1\n"
           "        ### END SOLUTION\n")
    out = ex.clear_solutions(src)
    assert out == ("class A:\n    def f(self):\n"
                   "        # YOUR CODE HERE\n        raise NotImplementedError()\n")
    compile(out, "<cell>", "exec")  # still valid Python


def test_several_regions_in_one_cell():
    src = ("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n"
           "def g():\n\t### BEGIN SOLUTION\n\treturn 2\n\t### END SOLUTION")
    out = ex.clear_solutions(src)
    assert out.count("raise NotImplementedError()") == 2
    assert "return" not in out
    assert "\t# YOUR CODE HERE\n\traise NotImplementedError()" in out


def test_markdown_region_becomes_answer_here():
    src = "Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n"
    assert ex.clear_solutions(src, "markdown") == "Why?\n\nYOUR ANSWER HERE\n"


@pytest.mark.parametrize("src,words", [
    ("### END SOLUTION", "never opened"),
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "cannot nest"),
])
def test_bad_markers_name_the_cell(src, words):
    with pytest.raises(ValueError, match=words) as info:
        ex.clear_solutions(src, where="solutions/x.ipynb, cell 3 (code)")
    assert "solutions/x.ipynb, cell 3" in str(info.value)


# ---------------------------------------------------------------- whole notebooks

def _solution_notebook():
    cells = [new_markdown_cell("# Title\n\nIntro."),
             new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION"),
             new_code_cell("print(f())"),
             new_markdown_cell("Answer:\n### BEGIN SOLUTION\nforty-two\n### END SOLUTION")]
    for i, cell in enumerate(cells):
        cell["id"] = f"c{i}"
    cells[2].outputs = [nbformat.v4.new_output("stream", text="42\n")]
    cells[2].execution_count = 3
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def test_generate_clears_marks_and_is_deterministic(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    src.mkdir()
    nbformat.write(_solution_notebook(), src / "07_demo.ipynb")
    assert ex.stale_exercises(src, dst) == [f"{src / '07_demo.ipynb'}: solution cells lack nbgrader metadata",
                                            f"{dst / '07_demo.ipynb'}: missing"]

    assert ex.generate_exercises(src, dst) == [dst / "07_demo.ipynb"]
    first = (dst / "07_demo.ipynb").read_bytes()
    solution_after = (src / "07_demo.ipynb").read_bytes()
    assert ex.generate_exercises(src, dst) == []          # nothing to rewrite the second time
    assert (dst / "07_demo.ipynb").read_bytes() == first   # same bytes
    assert (src / "07_demo.ipynb").read_bytes() == solution_after
    assert ex.stale_exercises(src, dst) == []

    sol = nbformat.read(src / "07_demo.ipynb", as_version=4)
    out = nbformat.read(dst / "07_demo.ipynb", as_version=4)
    meta = [c.metadata.get("nbgrader") for c in sol.cells]
    assert meta[0] is None and meta[2] is None
    assert meta[1] == {"grade": False, "grade_id": "07_demo-1", "locked": False, "schema_version": 3, "solution": True}
    assert meta[3] == {"grade": True, "grade_id": "07_demo-3", "locked": False, "points": 1,
                       "schema_version": 3, "solution": True}  # nbgrader grades markdown answers by hand
    assert [c.metadata.get("nbgrader") for c in out.cells] == meta     # exercises keep it
    assert sol.cells[2].outputs and "42" in sol.cells[1].source       # the solution keeps its content

    assert out.cells[0].source.splitlines()[:3] == [
        "# Title", "", "> **Generated** from `solutions/07_demo.ipynb` by `make exercises`: do not edit "
                       "this file by hand, edit the solution and regenerate."]
    assert out.cells[1].source == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert out.cells[2].outputs == [] and out.cells[2].execution_count is None
    assert out.cells[3].source == "Answer:\nYOUR ANSWER HERE"
    assert [c.id for c in out.cells] == ["c0", "c1", "c2", "c3"]


def _nbgrader_problems(nb):
    """nbgrader's own rules for cell metadata (nbgraderformat v3), restated: nbgrader is not a dependency."""
    problems, ids = [], set()
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if ex.BEGIN in cell.source and not meta:
            problems.append(f"cell {index}: solution region without nbgrader metadata")
        if not meta:
            continue
        if meta.get("schema_version") != 3 or not meta.get("grade_id"):
            problems.append(f"cell {index}: needs schema_version 3 and a grade_id")
        if meta.get("grade") and "points" not in meta:
            problems.append(f"cell {index}: a grade cell needs points")
        if cell.cell_type == "markdown" and bool(meta.get("grade")) != bool(meta.get("solution")):
            problems.append(f"cell {index}: a markdown answer must be both grade and solution")
        if meta.get("grade_id") in ids:
            problems.append(f"cell {index}: duplicate grade_id {meta['grade_id']}")
        ids.add(meta.get("grade_id"))
    return problems


def test_solutions_are_a_valid_nbgrader_source():
    for path in sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "solutions" / "zh").glob("*.ipynb")):
        problems = _nbgrader_problems(nbformat.read(path, as_version=4))
        assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems) + ". Fix: run `make exercises`."


def test_markdown_answer_left_ungraded_is_completed():
    nb = _solution_notebook()
    nb.cells[3].metadata["nbgrader"] = {"grade": False, "grade_id": "old", "locked": False,
                                        "schema_version": 3, "solution": True}
    assert ex.add_nbgrader_metadata(nb, "07_demo.ipynb")
    assert nb.cells[3].metadata["nbgrader"] == {"grade": True, "grade_id": "old", "locked": False,
                                                "points": 1, "schema_version": 3, "solution": True}
    assert _nbgrader_problems(nb) == []


def test_existing_grade_ids_are_kept(tmp_path):
    nb = _solution_notebook()
    nb.cells[1].metadata["nbgrader"] = {"grade": False, "grade_id": "07_demo-3", "locked": False,
                                        "schema_version": 3, "solution": True}
    assert ex.add_nbgrader_metadata(nb, "07_demo.ipynb")
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert ids == ["07_demo-3", "07_demo-3-2"]   # unique, the old one untouched
    assert not ex.add_nbgrader_metadata(nb, "07_demo.ipynb")


def test_stale_exercise_is_reported(tmp_path):
    src, dst = tmp_path / "solutions", tmp_path / "exercises"
    src.mkdir()
    nbformat.write(_solution_notebook(), src / "07_demo.ipynb")
    ex.generate_exercises(src, dst)
    target = dst / "07_demo.ipynb"
    target.write_text(target.read_text().replace("YOUR ANSWER HERE", "edited by hand"))
    nbformat.write(_solution_notebook(), dst / "08_orphan.ipynb")
    stale = ex.stale_exercises(src, dst)
    assert stale == [f"{target}: differs from what {src / '07_demo.ipynb'} generates",
                     f"{dst / '08_orphan.ipynb'}: no {src / '08_orphan.ipynb'} to generate it from "
                     f"(delete it, or add the solution)"]
    assert ex.main([str(src), str(dst), "--check"]) == 1


def test_bad_markers_in_a_notebook_name_notebook_and_cell(tmp_path, capsys):
    src = tmp_path / "solutions"
    src.mkdir()
    nb = _solution_notebook()
    nb.cells.append(new_code_cell("### BEGIN SOLUTION\nx = 1"))
    nbformat.write(nb, src / "09_bad.ipynb")
    with pytest.raises(ValueError, match=r"solutions/09_bad.ipynb, cell 4 \(code\).*never closed"):
        ex.generate_exercises(src, tmp_path / "exercises")
    assert ex.main([str(src), str(tmp_path / "exercises")]) == 2
    assert "09_bad.ipynb, cell 4" in capsys.readouterr().err


def test_note_goes_under_a_colab_badge_and_title():
    nb = _solution_notebook()
    nb.cells[0].source = "[![Open In Colab](https://x/badge.svg)](https://x)\n\n# Title\n\nIntro."
    out = ex.make_exercise(nb, "07_demo.ipynb")
    lines = out.cells[0].source.splitlines()
    assert lines[0].startswith("[![Open In Colab]") and lines[2] == "# Title"
    assert lines[4].startswith("> **Generated**") and lines[6] == "Intro."


def test_untouched_exercise_02_runs_to_the_end_and_says_not_done():
    """The pattern exercise, executed cell by cell in this process (nbval runs it in a kernel too)."""
    nb = nbformat.read(ROOT / "exercises" / "02_channel_attention.ipynb", as_version=4)
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for cell in nb.cells:
            magic = any(line.lstrip().startswith(("%", "!")) for line in cell.source.splitlines())
            if cell.cell_type == "code" and not magic:  # the Colab set-up cell is IPython-only
                exec(compile(cell.source, "<exercise cell>", "exec"), namespace)
    printed = out.getvalue()
    assert printed.count("✘ not done yet") == 2, printed
    assert "✔" not in printed
