"""tools/build_student.py: the student copy holds lessons, exercises, the package and set-up files,
and no solution code anywhere (checked on a generated course and on this repository); and it has no
dead ends: its links resolve, it never names what it lacks, every `make` it suggests works. Each
edition has its copy: the English one holds no Chinese folder, the Chinese one (`--edition zh`) holds
the Chinese lessons and exercises, the Chinese README, and a Makefile whose `make lab` opens them."""
from __future__ import annotations

import json
import os
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


STUCK_ZH = "卡住了？参考答案笔记本是 `solutions/zh/01_one.ipynb`；课程包自己的实现是 `cbam_course.X`。"


def _add_chinese_edition(root: Path) -> Path:
    """The small course's Chinese edition, laid out as the repository's (tools/translate.py)."""
    meta = {"kernelspec": KERNELSPEC, "cbam_course": {"language": "zh"}}
    for folder in ("notebooks/zh/translations", "exercises/zh", "solutions/zh/translations"):
        (root / folder).mkdir(parents=True)
    (root / "notebooks" / "zh" / "translations" / "01_one.md").write_text("<!-- cell a 0123456789ab -->\n# 课\n")
    lesson = new_notebook(metadata=meta, cells=[
        new_markdown_cell("# 第 1 课\n\n先读 [说明](../../README.zh-CN.md)，练习见 "
                          "[`exercises/zh/01_one.ipynb`](../../exercises/zh/01_one.ipynb)（参考答案见 `solutions/zh/01_one.ipynb`）。"),
        new_code_cell("x = 1")])
    nbformat.write(lesson, root / "notebooks" / "zh" / "01_one.ipynb")
    exercise = new_notebook(metadata=meta, cells=[new_markdown_cell("# 练习\n\n" + STUCK_ZH),
                                                  new_code_cell("def answer():\n    # 在这里写代码\n    raise NotImplementedError()\n")])
    nbformat.write(exercise, root / "exercises" / "zh" / "01_one.ipynb")
    shutil.copy(root / "solutions" / "01_one.ipynb", root / "solutions" / "zh" / "01_one.ipynb")
    (root / "README.md").write_text("# Course\n\nRun `make lab`. 中文版：[README.zh-CN.md](README.zh-CN.md)。\n")
    (root / "README.zh-CN.md").write_text("# 课程\n\n[English](README.md) · 运行 `make lab`。\n"
                                          "<!-- instructors:begin -->\n教师：[指南](docs/instructors.md)\n<!-- instructors:end -->\n")
    return root


def test_each_edition_has_its_copy(tmp_path):
    course = _add_chinese_edition(_make_course(tmp_path / "course"))
    url = build_student._repository_url(course)
    english = build_student.build(course, tmp_path / "en")
    assert not list(english.rglob("zh")) and not (english / "README.zh-CN.md").exists()
    assert (english / "notebooks" / "01_one.ipynb").exists()
    assert f"[README.zh-CN.md]({url}/blob/main/README.zh-CN.md)" in (english / "README.md").read_text(), \
        "the English copy points to the Chinese README online"

    out = build_student.build(course, tmp_path / "zh", edition="zh")
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"notebooks/zh/01_one.ipynb", "exercises/zh/01_one.ipynb", "README.md", "Makefile"} <= present
    assert not {"notebooks/01_one.ipynb", "exercises/01_one.ipynb", "README.zh-CN.md"} & present
    assert not (out / "notebooks" / "zh" / "translations").exists() and not (out / "solutions").exists()
    readme = (out / "README.md").read_text()
    assert readme.startswith(build_student.STUDENT_NOTE_ZH + "# 课程"), readme
    assert f"[English]({url}/blob/main/README.md)" in readme, "the English README is online, not this file"
    assert "docs/" not in readme
    lesson = nbformat.read(out / "notebooks" / "zh" / "01_one.ipynb", as_version=4).cells[0].source
    assert "[说明](../../README.md)" in lesson, "a link to the Chinese README points to the copy's README"
    assert "solutions" not in lesson and lesson.endswith("练习见 [`exercises/zh/01_one.ipynb`](../../exercises/zh/01_one.ipynb)。")
    stuck = nbformat.read(out / "exercises" / "zh" / "01_one.ipynb", as_version=4).cells[0].source
    assert stuck == "# 练习\n\n卡住了？请向老师求助；课程包自己的实现是 `cbam_course.X`。"
    assert build_student.dead_ends(out, build_student._top_level_names(course) - {p.name for p in out.iterdir()}) == []
    assert_no_solution_code(out, solution_bodies(course / "solutions") + solution_bodies(course / "solutions" / "zh"))

    (course / "README.zh-CN.md").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks README\.zh-CN\.md.*--edition en"):
        build_student.build(course, tmp_path / "zh", edition="zh")


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


def test_the_copys_makefile_holds_its_edition():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    missing, present = {"solutions", "tests", "tools", "docs"}, {"notebooks", "exercises", "cbam_course"}
    for edition in ("en", "zh"):
        out = student_makefile.adapt_makefile(text, missing, present, edition)
        assert re.search(rf"^EDITION\s*:= {edition}$", out, re.M), "LANG no longer picks an edition the copy lacks"
        assert "LANG=zh" not in re.search(r"^help:\n(?:\t.*\n)*", out, re.M).group(0)
    zh = student_makefile.adapt_makefile(text, missing, present, "zh")
    assert student_makefile.REFUSAL not in zh and "make exercises：不属于学生版（它需要课程仓库中的 solutions、tools" in zh
    assert f'"make lab        {student_makefile.HELP_ZH["lab"]}"' in zh
    with pytest.raises(ValueError, match="EDITION"):
        student_makefile.adapt_makefile("help:\n\t@echo hi\n", missing, present, "zh")


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
    # the Chinese edition's sentences, as solutions/zh/translations and notebooks/zh/translations have them
    assert rewrite(f"# T\n\n{generator._note('03_x.ipynb', 'zh')}\n\n正文") == "# T\n\n正文"
    assert rewrite("卡住了？参考答案笔记本是 `solutions/zh/02.ipynb`；课程包自己的实现是 `cbam_course.ChannelAttention`。") == (
        "卡住了？请向老师求助；课程包自己的实现是 `cbam_course.ChannelAttention`。")
    assert rewrite("卡住了？参考答案在 `solutions/zh/05.ipynb`；课程包") == "卡住了？请向老师求助；课程包"
    assert rewrite("训练一个小网络。参考答案是 `solutions/zh/05.ipynb`。下一课：") == "训练一个小网络。卡住了？请向老师求助。下一课："
    assert rewrite("每一步都有即时检查（参考答案见 `solutions/zh/01.ipynb`）。\n") == "每一步都有即时检查。\n"
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


STAND_IN_README_ZH = """# CBAM 动手学（代用的中文 README，仅供测试）

[English](README.md)。在全新克隆的仓库中运行：

    make lab     # 打开第 1 课
    make test    # 以快速模式运行每一个笔记本

第 1 课：[概念](notebooks/zh/01_concepts.ipynb)；练习在 `exercises/zh/` 中。<!-- instructors:begin -->
教师请看[教师指南](docs/instructors.md)。<!-- instructors:end -->
"""


def _course_with_chinese_readme(tmp: Path) -> Path:
    """This repository, once it has its README.zh-CN.md. Until then (it is being written by hand), a
    copy of the files git tracks here, as they are in the working tree, with a stand-in README: the
    test builds the real lessons either way, and never writes a stand-in into the repository."""
    if (ROOT / "README.zh-CN.md").is_file():
        return ROOT
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    copy = tmp / "course"
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / "README.zh-CN.md").write_text(STAND_IN_README_ZH, encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def built_copy(tmp_path_factory):
    """``built_copy(edition)``: this repository's student copy of that edition, built once per
    module; with the top-level names it lacks (what git tracks, less what the copy holds: solutions,
    tests, tools, docs, CONTRIBUTING.md, CI, ...), the edition and the repository it was built from."""
    built = {}

    def get(edition: str):
        if edition not in built:
            tmp = tmp_path_factory.mktemp(f"class-{edition}")
            root = _course_with_chinese_readme(tmp) if edition == "zh" else ROOT
            out = build_student.build(root, tmp / "student", edition=edition)
            lacking = build_student._top_level_names(root) - {p.name for p in out.iterdir()}
            assert "solutions" in lacking and "tests" in lacking, lacking
            built[edition] = (out, lacking, edition, root)
        return built[edition]
    return get


@pytest.fixture(params=["en", "zh"])
def real_copy(request, built_copy):
    """Each edition's copy in turn (see ``built_copy``)."""
    return built_copy(request.param)


def _package_files(package: Path) -> dict:
    return {p.relative_to(package).as_posix(): p.read_bytes() for p in package.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and ".egg-info" not in str(p)}


def test_this_repository_builds_a_clean_student_copy(real_copy):
    """The real course: no markers anywhere, no solution region in the lessons, the exercises or
    any other file. The package is the one exception, by design: it *is* the course's reference
    implementation (lessons import ChannelAttention, SEBlock, ... and assert their own code agrees),
    so its code may coincide with a solution. It is shipped byte for byte as in the repository
    (its Chinese message catalogs included), so the builder adds nothing to it."""
    out, _, edition, _ = real_copy
    assert not (out / "solutions").exists()
    zh = "zh" if edition == "zh" else ""
    lessons = sorted(p.name for p in (ROOT / "notebooks" / zh).glob("*.ipynb"))
    assert lessons and sorted(p.name for p in (out / "notebooks" / zh).glob("*.ipynb")) == lessons
    bodies = solution_bodies(ROOT / "solutions") + solution_bodies(ROOT / "solutions" / "zh")
    if list((ROOT / "solutions").glob("*.ipynb")):
        assert bodies, "solutions/ has notebooks but no ### BEGIN SOLUTION regions to check against"
    assert_no_solution_code(out, bodies, reference=("cbam_course",))
    assert _package_files(out / "cbam_course") == _package_files(ROOT / "cbam_course"), \
        "the student copy's package must be the repository's, unchanged"


def test_the_english_copy_holds_no_chinese_edition(built_copy):
    out = built_copy("en")[0]
    chinese = [p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.name in ("zh", "translations", "README.zh-CN.md") and "cbam_course" not in p.parts]
    assert not chinese, f"the English copy carries part of the Chinese edition: {chinese}"
    for path in out.rglob("*.ipynb"):
        assert nbformat.read(path, as_version=4).metadata.get("cbam_course", {}).get("language", "en") == "en", path
    lab = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(out), "lab"], capture_output=True,
                         text=True, env={**os.environ, "LANG": "zh_CN.UTF-8"})
    assert "/lab/tree/notebooks/01_concepts.ipynb" in lab.stdout, "a Chinese locale must not pick lessons it lacks"


def test_the_chinese_copy_is_the_chinese_edition(built_copy):
    """Its lessons and exercises are the Chinese notebooks at their repository paths; its README is
    the Chinese one; `make lab` opens Chinese lesson 01 in Chinese, whatever the locale; `make test`
    runs the Chinese notebooks; `make help` is Chinese."""
    out, _, _, root = built_copy("zh")
    for folder in ("notebooks", "exercises"):
        assert not list((out / folder).glob("*.ipynb")), f"the Chinese copy holds English {folder}/"
        names = sorted(p.name for p in (ROOT / folder / "zh").glob("*.ipynb"))
        assert sorted(p.name for p in (out / folder / "zh").glob("*.ipynb")) == names
        for name in names:
            shipped = nbformat.read(out / folder / "zh" / name, as_version=4)
            source = nbformat.read(ROOT / folder / "zh" / name, as_version=4)
            assert shipped.metadata["cbam_course"]["language"] == "zh", name
            assert [c.source for c in shipped.cells if c.cell_type == "code"] == \
                   [c.source for c in source.cells if c.cell_type == "code"], f"{folder}/zh/{name}"
    assert not (out / "notebooks" / "zh" / "translations").exists(), "translation files are the maintainers' source"
    assert "请向老师求助" in (out / "exercises" / "zh" / "02_channel_attention.ipynb").read_text(encoding="utf-8")

    readme = (out / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(build_student.STUDENT_NOTE_ZH) and not (out / "README.zh-CN.md").exists()
    assert "](README.md" not in readme, "a link to the English README must not point to this file"
    title = next(line for line in (root / "README.zh-CN.md").read_text(encoding="utf-8").splitlines() if line.startswith("# "))
    english = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("# "))
    assert title in readme.splitlines() and english not in readme.splitlines(), readme[:400]
    assert len(re.findall(r"[\u4e00-\u9fff]", readme)) > len(re.findall(r"\b[A-Za-z]{4,}\b", readme)) / 4, \
        "the Chinese copy's README reads as Chinese"

    for locale in ("en_US.UTF-8", "zh_CN.UTF-8", "zh"):
        lab = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(out), "lab"], capture_output=True,
                             text=True, env={**os.environ, "LANG": locale})
        assert lab.returncode == 0, lab.stderr
        line = lab.stdout.splitlines()[-1]
        assert "--LabApp.default_url=/lab/tree/notebooks/zh/01_concepts.ipynb" in line, line
        assert "CBAM_COURSE_LANG=zh" in line and "JUPYTERLAB_SETTINGS_DIR=" in line, line
        assert '{"locale": "zh_CN"}' in lab.stdout, "JupyterLab's own menus in Chinese"
    pytest_line = next(line for line in _dry_run(out, "test").splitlines() if "pytest" in line)
    assert pytest_line.endswith(" notebooks exercises"), pytest_line  # which hold the Chinese notebooks alone
    help_text = subprocess.run(["make", "--no-print-directory", "-C", str(out), "help"],
                               capture_output=True, text=True).stdout
    english = [line for line in help_text.splitlines() if not re.search(r"[\u4e00-\u9fff]", line)]
    assert help_text and not english, f"help lines with no Chinese text (student_makefile.HELP_ZH): {english}"


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


def test_student_copy_links_resolve(real_copy):
    out = real_copy[0]
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
    out, lacking, _, root = real_copy
    names = [re.escape(n) + ("/" if (root / n).is_dir() else r"(?![\w.-])") for n in sorted(lacking)]
    mention = re.compile(r"(?<![\w./-])(?:" + "|".join(names) + ")")
    found = []
    for rel, text in _texts(out):
        if rel.split("/")[0] == "cbam_course":
            continue
        found += [f"{rel}: ...{text[max(m.start() - 40, 0):m.end() + 20]!r}..." for m in mention.finditer(text)]
    assert not found, "the student copy mentions what it does not have:\n" + "\n".join(found)
    assert build_student.dead_ends(out, lacking) == []


def test_every_make_command_the_copy_mentions_works(real_copy):
    out, _, edition, _ = real_copy
    mentioned = {}
    for _, where, text in _documents(out):
        for match in MAKE_RE.finditer(text):
            mentioned.setdefault(match.group(1) or match.group(2), where)
    assert {"lab", "test"} <= set(mentioned), mentioned
    refused = [f"make {target} ({where})" for target, where in sorted(mentioned.items())
               if student_makefile.refusal(edition) in _dry_run(out, target)]
    assert not refused, "the student copy suggests commands it cannot run:\n" + "\n".join(refused)


def test_student_make_help_lists_only_what_works(real_copy):
    out, _, edition, _ = real_copy
    done = subprocess.run(["make", "--no-print-directory", "-C", str(out), "help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^make ([\w.-]+)", done.stdout, re.M)
    assert "lab" in listed and "test" in listed, done.stdout
    refused = [t for t in listed if student_makefile.refusal(edition) in _dry_run(out, t)]
    assert not refused, f"`make help` lists targets the copy refuses: {refused}"
    assert student_makefile.refusal(edition) not in _dry_run(out, "clean")
