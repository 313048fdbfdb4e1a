"""tools/build_student.py: the student copy holds lessons, exercises, the package and set-up files,
and no solution code anywhere (checked on a generated course and on this repository); and it has no
dead ends: its links resolve, it never names what it lacks, every `make` it suggests works."""
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
import student_makefile  # noqa: E402

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
    (course / "dist" / "html").mkdir(parents=True)  # build output: `make clean` removes it, it is not "missing"
    out = build_student.build(course, tmp_path / "student")
    makefile = (out / "Makefile").read_text()
    for target in ("lab", "test", "exercises", "help", "clean"):
        assert re.search(rf"^{target}:", makefile, re.M), f"student Makefile lost `make {target}`"
    commands = _dry_run(out, "test")
    pytest_line = next(line for line in commands.splitlines() if "pytest" in line)
    assert pytest_line.endswith(" notebooks exercises"), pytest_line
    assert student_makefile.REFUSAL not in commands, "`make test` runs the notebooks and says nothing of tests/"
    assert "make unit: not part of the student copy (it needs tests" in _dry_run(out, "unit")
    assert "needs solutions and tools" in _dry_run(out, "exercises")
    done = subprocess.run(["make", "--no-print-directory", "-C", str(out), "exercises"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "needs solutions" in done.stdout, done.stdout + done.stderr
    assert not (out / ".venv").exists(), "explaining a missing folder must not install anything first"
    help_text = _dry_run(out, "help")
    assert "solutions/" not in help_text and "make exercises" not in help_text and "make lab" in help_text
    assert "notebooks/01_concepts.ipynb" in _dry_run(out, "lab")
    (out / ".venv" / "bin").mkdir(parents=True)
    (out / "dist").mkdir()
    done = subprocess.run(["make", "--no-print-directory", "-C", str(out), "clean"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and student_makefile.REFUSAL not in done.stdout, done.stdout + done.stderr
    assert not (out / ".venv").exists() and not (out / "dist").exists(), "`make clean` must clean"


def test_adapt_makefile_rules():
    text = ("# Build things.\n\nall: a\n\nnb: setup\n\tpytest -q $(NBVAL) notebooks exercises solutions\n\n"
            "gen:\n\t$(BIN)/python tools/exercises.py solutions exercises\n\n"
            "# The unit tests live in tests/.\n# (two lines)\nunit:\n\tpytest tests\n\n"
            "check: unit nb\n\nonly-unit: unit\n\n"
            "%.done: pyproject.toml\n\tbash tools/x.sh $*\n\n"
            "clean:\n\trm -rf .venv dist tools/cache\n\n"
            "help:\n\t@echo \"make gen   regenerate exercises from the solutions\"\n\t@echo \"          (slowly)\"\n"
            "\t@echo \"make nb    run tests\"\n\t@echo \"make x    see docs/x.md\"\n")
    out = student_makefile.adapt_makefile(text, {"solutions", "tests", "tools", "docs", "dist"},
                                       {"notebooks", "exercises"})
    assert "\tpytest -q $(NBVAL) notebooks exercises\n" in out
    assert "tools/exercises.py" not in out
    assert "make gen: not part of the student copy (it needs solutions and tools" in out
    assert "regenerate" not in out and "(slowly)" not in out and "make nb    run tests" in out
    assert "docs/x.md" not in out, "a help line naming a missing file goes"
    assert "# Build things." in out and "tests/" not in out, "a comment naming a missing folder goes"
    assert "\ncheck: nb\n" in out, "a working rule drops its refusing prerequisites"
    assert "only-unit:\n\t@echo \"make only-unit: not part" in out, "left with nothing to do, it refuses"
    assert "%.done" not in out, "a refusing pattern rule goes"
    assert "clean:\n\trm -rf .venv dist tools/cache\n" in out, "removing things needs nothing"


def test_markdown_rules(tmp_path):
    """The rewrite rules of the module doc, one by one, on the sentences the course really has."""
    root = tmp_path / "course"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "performance.md").write_text("numbers\n")
    missing, url = {"docs", "solutions", "CONTRIBUTING.md"}, "https://github.com/o/c"

    def rewrite(text, folder=""):
        return build_student.rewrite_markdown(text, folder, root, missing, url)

    note = ("# Exercises 02\n\n> **Generated** from `solutions/02.ipynb` by `make exercises`: do not edit "
            "this file by hand, edit the solution and regenerate.\n\nPractice for lesson 02.")
    assert rewrite(note) == "# Exercises 02\n\nPractice for lesson 02."
    import exercises as generator  # tools/exercises.py: the rule must match the note it really writes
    assert rewrite(f"# T\n\n{generator._note('03_x.ipynb')}\n\nText") == "# T\n\nText"
    assert rewrite("Stuck? The solved notebook is `solutions/02.ipynb`; the package's own version\nis "
                   "`cbam_course.ChannelAttention`.") == ("Stuck? Ask your instructor; the package's own "
                                                          "version\nis `cbam_course.ChannelAttention`.")
    assert rewrite("them. The solved version is\n`solutions/05.ipynb`. Next lesson:") == (
        "them. Stuck? Ask your instructor. Next lesson:")
    assert rewrite("with\ninstant checks (the solved version is `solutions/01.ipynb`).") == "with\ninstant checks."
    page = "https://github.com/o/c/blob/main/docs/performance.md"
    assert rewrite("in `docs/performance.md`, section 1.") == f"in [`performance.md`]({page}), section 1."
    assert rewrite("in\n[docs/performance.md](docs/performance.md)):") == f"in\n[performance.md]({page})):"
    assert rewrite("see [numbers](../docs/performance.md#one)", "notebooks") == f"see [numbers]({page}#one)"
    assert rewrite("see `docs/`") == "see [`docs`](https://github.com/o/c/tree/main/docs)"
    assert rewrite("`docs/nowhere.md`") == "`docs/nowhere.md`", "what is not there is left for the check"
    span = "GPU.<!-- instructors:begin --> Teachers:\nsee [g](docs/i.md).<!-- instructors:end -->\nNext"
    assert rewrite(span) == "GPU.\nNext"
    block = ("## Tests\n\n<!-- instructors:begin -->\n`make unit` and CI.\n<!-- instructors:end -->\n"
             "<!-- student:\n`make test` runs the notebooks.\n-->\n\n## License\n")
    assert rewrite(block) == "## Tests\n\n`make test` runs the notebooks.\n\n## License\n"
    kept = "<!-- colab:begin -->\n[badge](https://x)\n<!-- colab:end -->\n"
    assert rewrite(kept) == kept


def test_without_git_ignored_build_output_is_not_missing(tmp_path):
    course = _make_course(tmp_path / "course")
    (course / ".gitignore").write_text("/dist/\n.venv/\n")
    (course / "dist").mkdir()
    (course / ".venv").mkdir()
    names = build_student._top_level_names(course)
    assert {"solutions", "tests", "tools", "docs"} <= names and not {"dist", ".venv"} & names


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


LINK_RE = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
MAKE_RE = re.compile(r"`make ([a-z][\w.-]*)|^(?: {4}|\t)[ \t]*make ([a-z][\w.-]*)", re.M)


def _documents(copy: Path):
    """(where, Markdown text) for every .md file and every notebook markdown cell in the copy."""
    for path in sorted(copy.rglob("*.md")):
        yield path, path.relative_to(copy).as_posix(), path.read_text(encoding="utf-8")
    for path in sorted(copy.rglob("*.ipynb")):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "markdown":
                yield path, f"{path.relative_to(copy).as_posix()} cell {i}", cell.source


@pytest.fixture(scope="module")
def real_copy(tmp_path_factory):
    """This repository's student copy, and the top-level names it lacks (what git tracks, less what
    the copy holds: solutions, tests, tools, docs, CONTRIBUTING.md, CI, ...)."""
    out = build_student.build(ROOT, tmp_path_factory.mktemp("class") / "student")
    lacking = build_student._top_level_names(ROOT) - {p.name for p in out.iterdir()}
    assert "solutions" in lacking and "tests" in lacking, lacking
    return out, lacking


def test_student_copy_links_resolve(real_copy):
    out, _ = real_copy
    broken = []
    for path, where, text in _documents(out):
        for target in LINK_RE.findall(text):
            target = target.partition("#")[0]
            if target and not re.match(r"[a-zA-Z][\w+.-]*:", target) and not (path.parent / target).exists():
                broken.append(f"{where}: {target}")
    assert not broken, "links to nothing in the student copy:\n" + "\n".join(broken)


def test_student_copy_never_mentions_what_it_lacks(real_copy):
    """No file and no cell names a folder or file the copy does not ship. The package is the one
    exception: it is the repository's, byte for byte (see the test above), docstrings included."""
    out, lacking = real_copy
    names = [re.escape(n) + ("/" if (ROOT / n).is_dir() else r"(?![\w.-])") for n in sorted(lacking)]
    mention = re.compile(r"(?<![\w./-])(?:" + "|".join(names) + ")")
    found = []
    for rel, text in _texts(out):
        if rel.split("/")[0] == "cbam_course":
            continue
        found += [f"{rel}: ...{text[max(m.start() - 40, 0):m.end() + 20]!r}..." for m in mention.finditer(text)]
    assert not found, "the student copy mentions what it does not have:\n" + "\n".join(found)
    assert build_student.dead_ends(out, lacking) == []


def test_every_make_command_the_copy_mentions_works(real_copy):
    out, _ = real_copy
    mentioned = {}
    for _, where, text in _documents(out):
        for match in MAKE_RE.finditer(text):
            mentioned.setdefault(match.group(1) or match.group(2), where)
    assert {"lab", "test"} <= set(mentioned), mentioned
    refused = [f"make {target} ({where})" for target, where in sorted(mentioned.items())
               if student_makefile.REFUSAL in _dry_run(out, target)]
    assert not refused, "the student copy suggests commands it cannot run:\n" + "\n".join(refused)


def test_student_make_help_lists_only_what_works(real_copy):
    out, _ = real_copy
    done = subprocess.run(["make", "--no-print-directory", "-C", str(out), "help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^make ([\w.-]+)", done.stdout, re.M)
    assert "lab" in listed and "test" in listed, done.stdout
    refused = [t for t in listed if student_makefile.REFUSAL in _dry_run(out, t)]
    assert not refused, f"`make help` lists targets the copy refuses: {refused}"
    assert student_makefile.REFUSAL not in _dry_run(out, "clean")
