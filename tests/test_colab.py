"""tools/colab.py: the badge comes from pyproject.toml, the set-up cell runs only on Colab,
stamping twice changes nothing, and every committed notebook carries the stamp."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import colab  # noqa: E402

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
FORK_URL = "https://github.com/someone-else/cbam-fork"


def _pyproject_url() -> str:
    """The Repository line of pyproject.toml, read without the code under test."""
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match, "pyproject.toml has no [project.urls] Repository line"
    return match.group(1).rstrip("/")


def _make_repo(tmp_path: Path, url: str = FORK_URL) -> Path:
    """A tiny repository: a pyproject.toml whose Repository line is ``url`` and one notebook in
    each folder, the solution with an nbgrader-style solution cell."""
    text = (ROOT / "pyproject.toml").read_text().replace(_pyproject_url(), url)
    (tmp_path / "pyproject.toml").write_text(text)
    for folder in colab.FOLDERS:
        (tmp_path / folder).mkdir()
        nb = new_notebook(metadata={"kernelspec": KERNELSPEC}, cells=[
            new_markdown_cell("# Lesson one\n\nSome words."),
            new_code_cell("import math\nassert math.pi > 3"),
            new_markdown_cell("## Summary"),
        ])
        nbformat.write(nb, tmp_path / folder / "01_one.ipynb")
    return tmp_path


def _run_setup_cell(source: str, monkeypatch, on_colab: bool) -> list[tuple[str, str]]:
    """Execute the set-up cell as IPython would (magics turned into calls), with ``google.colab``
    present in or absent from sys.modules; return the magics it called instead of running them."""
    calls = []

    class FakeShell:
        def run_line_magic(self, name, line):
            calls.append((name, line))

        def system(self, cmd):
            calls.append(("!", cmd))

    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(source)
    exec(compile(code, "<colab-setup>", "exec"), {"get_ipython": lambda: FakeShell()})
    return calls


def test_setup_cell_does_nothing_outside_colab(monkeypatch):
    source = colab.setup_source(_pyproject_url())
    assert _run_setup_cell(source, monkeypatch, on_colab=False) == []


def test_setup_cell_installs_the_package_on_colab(monkeypatch):
    url = _pyproject_url()
    calls = _run_setup_cell(colab.setup_source(url), monkeypatch, on_colab=True)
    assert len(calls) == 1, calls
    magic, line = calls[0]
    assert magic == "pip"
    assert line.startswith("install") and f"cbam-course @ git+{url}@{colab.DEFAULT_BRANCH}" in line


def test_stamped_setup_cell_is_guarded_in_the_notebook(tmp_path, monkeypatch):
    repo = _make_repo(tmp_path)
    colab.stamp_files([repo / "notebooks"], root=repo)
    nb = nbformat.read(repo / "notebooks" / "01_one.ipynb", as_version=4)
    setup = [c for c in nb.cells if c.cell_type == "code"][0]
    assert colab.SETUP_TAG in setup.metadata["tags"]
    assert _run_setup_cell(setup.source, monkeypatch, on_colab=False) == []
    assert [m for m, _ in _run_setup_cell(setup.source, monkeypatch, on_colab=True)] == ["pip"]


def test_repository_url_is_read_from_pyproject(tmp_path):
    assert colab.repository_url(ROOT / "pyproject.toml") == _pyproject_url()
    repo = _make_repo(tmp_path, FORK_URL + ".git/")
    assert colab.repository_url(repo / "pyproject.toml") == FORK_URL


def test_badges_use_the_pyproject_address(tmp_path):
    repo = _make_repo(tmp_path)
    changed = colab.stamp_files([repo / f for f in colab.FOLDERS], root=repo)
    assert len(changed) == 3
    for folder in colab.FOLDERS:
        nb = nbformat.read(repo / folder / "01_one.ipynb", as_version=4)
        first_md = nb.cells[0]
        assert first_md.cell_type == "markdown" and colab.BADGE_TAG in first_md.metadata["tags"]
        target = "exercises" if folder == "solutions" else folder  # solutions open their exercise
        link = f"https://colab.research.google.com/github/someone-else/cbam-fork/blob/main/{target}/01_one.ipynb"
        assert first_md.source.startswith(f"[![Open In Colab]({colab.BADGE_IMAGE})]({link})")
        assert "# Lesson one\n\nSome words." in first_md.source  # the author's text is kept
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert colab.SETUP_TAG in code[0].metadata["tags"] and FORK_URL in code[0].source
        assert code[1].source == "import math\nassert math.pi > 3"
        nbformat.validate(nb)


def test_stamping_is_idempotent_and_a_fork_restamps_in_place(tmp_path):
    repo = _make_repo(tmp_path)
    folders = [repo / f for f in colab.FOLDERS]
    colab.stamp_files(folders, root=repo)
    before = {p: p.read_bytes() for p in repo.rglob("*.ipynb")}
    assert colab.stamp_files(folders, root=repo) == []
    assert {p: p.read_bytes() for p in repo.rglob("*.ipynb")} == before

    # the fork changes one line; stamping replaces the old badge and cell rather than adding more
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(FORK_URL, "https://github.com/third/course"))
    assert len(colab.stamp_files(folders, root=repo)) == 3
    nb = nbformat.read(repo / "notebooks" / "01_one.ipynb", as_version=4)
    text = nbformat.writes(nb)
    assert FORK_URL not in text and text.count("colab-badge.svg") == 1
    assert sum(colab.SETUP_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1
    assert colab.unstamp(nb).cells[0].source == "# Lesson one\n\nSome words."


def test_check_mode_writes_nothing_and_reports(tmp_path):
    repo = _make_repo(tmp_path)
    before = {p: p.read_bytes() for p in repo.rglob("*.ipynb")}
    assert colab.main(["--root", str(repo), "--check"]) == 1
    assert {p: p.read_bytes() for p in repo.rglob("*.ipynb")} == before
    assert colab.main(["--root", str(repo)]) == 0
    assert colab.main(["--root", str(repo), "--check"]) == 0


def test_a_non_github_address_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="github.com/OWNER/NAME"):
        colab.github_slug("https://gitlab.com/a/b")


def test_stamp_and_make_exercises_agree(tmp_path):
    """`make exercises` copies a stamped solution's cells into exercises/: what it writes must
    already be stamped, and stamping everything must leave the exercises as the generator makes
    them, or `make colab` and the exercises' freshness test would fight."""
    from exercises import generate_exercises, stale_exercises

    repo = _make_repo(tmp_path)
    solution = nbformat.read(repo / "solutions" / "01_one.ipynb", as_version=4)
    solution.cells[1].source = "def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION"
    nbformat.write(solution, repo / "solutions" / "01_one.ipynb")
    colab.stamp_files([repo / "solutions"], root=repo)
    generate_exercises(repo / "solutions", repo / "exercises")

    exercise = nbformat.read(repo / "exercises" / "01_one.ipynb", as_version=4)
    assert "raise NotImplementedError()" in exercise.cells[2].source  # it really was generated
    assert colab.stamp_files([repo / "exercises"], root=repo, check=True) == []
    assert "/blob/main/exercises/01_one.ipynb)" in exercise.cells[0].source

    assert len(colab.stamp_files([repo / f for f in colab.FOLDERS], root=repo)) == 1  # notebooks/ only
    assert stale_exercises(repo / "solutions", repo / "exercises") == []


def test_every_committed_notebook_is_stamped():
    """Fails until `make colab` has been run after the last notebook change: run it and commit."""
    folders = [ROOT / f for f in colab.FOLDERS if (ROOT / f).is_dir()]
    unstamped = colab.stamp_files(folders, root=ROOT, check=True)
    for name, lesson in colab.READMES.items():
        if colab.stamp_readme(ROOT / name, colab.repository_url(), check=True, lesson=lesson):
            unstamped.append(ROOT / name)
    assert not unstamped, "not stamped (run `make colab`): " + ", ".join(
        p.relative_to(ROOT).as_posix() for p in unstamped)


def test_readme_badges_come_from_pyproject(tmp_path):
    repo = _make_repo(tmp_path)
    readme = repo / "README.md"
    readme.write_text("# Course\n\n<!-- colab:begin -->\nold\n<!-- colab:end -->\n\nText.\n")
    assert colab.main(["--root", str(repo), "--check"]) == 1
    assert colab.main(["--root", str(repo)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- colab:end -->\n\nText.\n")
    assert "colab.research.google.com/github/someone-else/cbam-fork/blob/main/notebooks/01_concepts.ipynb" in text
    assert "mybinder.org/v2/gh/someone-else/cbam-fork/main?urlpath=lab/tree/notebooks/01_concepts.ipynb" in text
    assert colab.main(["--root", str(repo), "--check"]) == 0  # idempotent
