"""tools/build_student.py: the student copy holds lessons, exercises, the package and set-up files,
and no solution code anywhere (checked on a generated course and on this repository)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_student  # noqa: E402

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
REGION_RE = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)
SECRET = "    secret_answer = sum(k * k for k in range(17)) - 1193  # distinctive solution line"


def _normalise(code: str) -> str:
    """Code lines without indentation, blank lines or comment-only lines: how a region is compared."""
    lines = (line.split("  #")[0].strip() for line in code.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def solution_bodies(solutions: Path) -> list[str]:
    """The normalised code of every solution region in the notebooks under ``solutions``."""
    bodies = []
    for path in sorted(solutions.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type in ("code", "markdown"):  # written answers are solutions too
                bodies += [_normalise(m.group(1)) for m in REGION_RE.finditer(cell.source)]
    return [b for b in bodies if len(b.replace(" ", "")) >= 20]  # `pass` alone proves nothing


def _texts(folder: Path):
    """(relative path, normalised text) of every file under ``folder``; notebooks by cell source."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_bytes().decode("latin-1")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c.get("source", "")) for c in json.loads(text).get("cells", []))
        yield path.relative_to(folder).as_posix(), text


def assert_no_solution_code(copy: Path, bodies: list[str], reference: tuple[str, ...] = ()) -> None:
    """No solution marker in any file, and no solution region's code in any file outside the
    folders in ``reference`` (see test_this_repository_builds_a_clean_student_copy)."""
    leaks = []
    for rel, text in _texts(copy):
        if re.search(r"^[ \t]*#+[ \t]*(BEGIN|END) SOLUTION", text, re.M):
            leaks.append(f"{rel}: solution marker")
        if rel.split("/")[0] in reference:
            continue
        normalised = _normalise(text)
        leaks += [f"{rel}: solution region {b.splitlines()[0]!r}..." for b in bodies if b in normalised]
    assert not leaks, "solution code in the student copy:\n" + "\n".join(leaks)


def _make_course(root: Path) -> Path:
    """A small course: one lesson, its solution with a region and its generated exercise."""
    for folder in ("notebooks", "solutions", "exercises", "cbam_course", "tests", "tools", "docs", "data"):
        (root / folder).mkdir(parents=True)
    for name in ("pyproject.toml", "Makefile", "environment.yml"):
        shutil.copy(ROOT / name, root / name)
    (root / "README.md").write_text("# Course\n\nRun `make lab`.\n")
    (root / "data" / "README.md").write_text("CIFAR-10 goes here.\n")
    (root / "data" / "cifar-10-python.tar.gz").write_bytes(b"not the data set")
    (root / "cbam_course" / "__init__.py").write_text('"""The package."""\n')
    (root / "tests" / "test_x.py").write_text("def test_x():\n    assert True\n")
    (root / "tools" / "helper.py").write_text("print('maintainers only')\n")
    (root / "docs" / "instructors.md").write_text("The answer is in solutions/.\n")
    meta = {"kernelspec": KERNELSPEC}
    lesson = new_notebook(metadata=meta, cells=[new_markdown_cell("# Lesson"), new_code_cell("x = 1")])
    nbformat.write(lesson, root / "notebooks" / "01_one.ipynb")
    solved = "def answer():\n    ### BEGIN SOLUTION\n" + SECRET + "\n    return secret_answer\n    ### END SOLUTION\n"
    solution = new_notebook(metadata=meta, cells=[new_markdown_cell("# Exercise"), new_code_cell(solved)])
    solution.cells[1].metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False,
                                              "grade_id": "answer", "schema_version": 3}
    nbformat.write(solution, root / "solutions" / "01_one.ipynb")
    stub = "def answer():\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    exercise = new_notebook(metadata=meta, cells=[new_markdown_cell("# Exercise"), new_code_cell(stub)])
    exercise.cells[1].outputs = [nbformat.v4.new_output("stream", text="left over output\n")]
    nbformat.write(exercise, root / "exercises" / "01_one.ipynb")
    return root


def test_student_copy_has_the_course_and_no_solutions(tmp_path):
    course = _make_course(tmp_path / "course")
    out = build_student.build(course, tmp_path / "student")
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    for needed in ("notebooks/01_one.ipynb", "exercises/01_one.ipynb", "cbam_course/__init__.py",
                   "pyproject.toml", "Makefile", "environment.yml", "README.md", "data/README.md"):
        assert needed in present, f"{needed} missing from the student copy"
    for absent in ("solutions", "tests", "tools", "docs"):
        assert not (out / absent).exists(), f"{absent}/ must not be in the student copy"
    assert not (out / "data" / "cifar-10-python.tar.gz").exists()
    exercise = nbformat.read(out / "exercises" / "01_one.ipynb", as_version=4)
    assert exercise.cells[1].outputs == [], "notebooks are handed out without outputs"

    bodies = solution_bodies(course / "solutions")
    assert bodies == [_normalise(SECRET + "\n    return secret_answer")]
    assert_no_solution_code(out, bodies)


def test_the_scan_would_catch_a_leak(tmp_path):
    """The check above can fail: a solution body pasted into a lesson is found."""
    course = _make_course(tmp_path / "course")
    leaked = nbformat.read(course / "notebooks" / "01_one.ipynb", as_version=4)
    leaked.cells.append(new_code_cell("def answer():\n" + SECRET + "\n    return secret_answer\n"))
    nbformat.write(leaked, course / "notebooks" / "01_one.ipynb")
    out = build_student.build(course, tmp_path / "student")
    with pytest.raises(AssertionError, match="notebooks/01_one.ipynb: solution region"):
        assert_no_solution_code(out, solution_bodies(course / "solutions"))


def test_a_marker_left_in_an_exercise_stops_the_build(tmp_path):
    course = _make_course(tmp_path / "course")
    shutil.copy(course / "solutions" / "01_one.ipynb", course / "exercises" / "01_one.ipynb")
    with pytest.raises(RuntimeError, match=r"solution markers found.*exercises/01_one.ipynb cell 1"):
        build_student.build(course, tmp_path / "student")
    assert not (tmp_path / "student").exists(), "a copy with solution code must not be left behind"


def _dry_run(folder: Path, target: str) -> str:
    done = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(folder), target], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_student_makefile_works_without_solutions_and_tests(tmp_path):
    course = _make_course(tmp_path / "course")
    out = build_student.build(course, tmp_path / "student")
    makefile = (out / "Makefile").read_text()
    for target in ("lab", "test", "exercises", "help"):
        assert re.search(rf"^{target}:", makefile, re.M), f"student Makefile lost `make {target}`"
    commands = _dry_run(out, "test")
    pytest_line = next(line for line in commands.splitlines() if "pytest" in line)
    assert pytest_line.endswith(" notebooks exercises"), pytest_line
    assert "needs tests/" in commands  # `make unit` explains instead of failing
    assert "needs solutions/" in _dry_run(out, "exercises")
    done = subprocess.run(["make", "--no-print-directory", "-C", str(out), "exercises"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "needs solutions/" in done.stdout, done.stdout + done.stderr
    assert not (out / ".venv").exists(), "explaining a missing folder must not install anything first"
    assert "solutions/" not in _dry_run(out, "help")
    assert "notebooks/01_concepts.ipynb" in _dry_run(out, "lab")


def test_adapt_makefile_rules():
    text = ("all: a\n\nnb: setup\n\tpytest -q $(NBVAL) notebooks exercises solutions\n\n"
            "gen:\n\t$(BIN)/python tools/exercises.py solutions exercises\n\n"
            "help:\n\t@echo \"make gen   regenerate exercises/ from solutions/\"\n\t@echo \"make nb    run tests\"\n")
    out = build_student.adapt_makefile(text, {"solutions", "tests"}, {"notebooks", "exercises"})
    assert "\tpytest -q $(NBVAL) notebooks exercises\n" in out
    assert "tools/exercises.py" not in out and 'make gen: not part of the student copy (it needs solutions/' in out
    assert "regenerate" not in out and "make nb    run tests" in out


def test_this_repository_builds_a_clean_student_copy(tmp_path):
    """The real course: no markers anywhere, no solution region in the lessons, the exercises or
    any other file. The package is the one exception, by design: it *is* the course's reference
    implementation (lessons import ChannelAttention, SEBlock, ... and assert their own code agrees),
    so its code may coincide with a solution. It is shipped byte for byte as in the repository,
    so the builder adds nothing to it."""
    out = build_student.build(ROOT, tmp_path / "student")
    assert not (out / "solutions").exists()
    lessons = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == lessons
    bodies = solution_bodies(ROOT / "solutions")
    if list((ROOT / "solutions").glob("*.ipynb")):
        assert bodies, "solutions/ has notebooks but no ### BEGIN SOLUTION regions to check against"
    assert_no_solution_code(out, bodies, reference=("cbam_course",))
    shipped = {p.relative_to(out / "cbam_course"): p.read_bytes() for p in (out / "cbam_course").rglob("*.py")}
    source = {p.relative_to(ROOT / "cbam_course"): p.read_bytes() for p in (ROOT / "cbam_course").rglob("*.py")}
    assert shipped == source, "the student copy's package must be the repository's, unchanged"
