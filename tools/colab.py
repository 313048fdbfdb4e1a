"""Stamp every notebook with an "Open in Colab" badge and a Colab-only set-up cell.

    python tools/colab.py                    # stamp notebooks/, solutions/, exercises/ (make colab)
    python tools/colab.py --check            # exit 1 and list the notebooks that need stamping
    python tools/colab.py some/folder a.ipynb --branch main

The repository address lives in one place, ``[project.urls] Repository`` in pyproject.toml: a fork
changes that line and runs ``make colab``, which also refreshes the README's badges (between
``<!-- colab:begin -->`` and ``<!-- colab:end -->``). What the stamp does to a notebook:

- the first markdown cell gets the badge as its first line (and the tag ``colab-badge``);
- a code cell tagged ``colab-setup`` follows that cell (so it is the first code cell). It installs
  the package from the repository when, and only when, it runs on Colab
  (``"google.colab" in sys.modules``); on a laptop, Binder, a JupyterHub or under nbval it does nothing.

Stamping is idempotent: old stamps are found by their tags (and the badge by its pattern), removed
and written again, and a file is rewritten only when its content changes.

A solution notebook's badge opens the *exercise* notebook of the same name: that is the copy learners
should open, and ``make exercises`` copies the solution's cells into ``exercises/``, so the generated
exercises carry the right badge and re-stamping them changes nothing.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
DEFAULT_BRANCH = "main"

BADGE_TAG = "colab-badge"
SETUP_TAG = "colab-setup"
SETUP_ID = "colab-setup"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
# Any badge this tool wrote, whatever address it pointed to (so a fork's re-stamp replaces it).
BADGE_RE = re.compile(r"^\[!\[Open In Colab\]\(" + re.escape(BADGE_IMAGE) + r"\)\]\([^)\s]*\)[ \t]*\n*")

SETUP_TEMPLATE = '''\
# Colab only: install the course package. Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    %pip install --quiet "{requirement}"'''
# The Chinese edition's (notebooks/zh/, solutions/zh/, exercises/zh/): the package speaks Chinese there.
SETUP_TEMPLATE_ZH = '''\
# 课程的中文版：课程包的提示、报错和进度信息也用中文。在 Colab 上，这个单元格还会安装课程包。
import os
import sys

os.environ["CBAM_COURSE_LANG"] = "zh"
if "google.colab" in sys.modules:
    %pip install --quiet "{requirement}"'''


def repository_url(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The repository address from ``[project.urls] Repository`` in pyproject.toml, without a
    trailing ``/`` or ``.git``."""
    text = Path(pyproject).read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # Python 3.10: read the one line we need
        tomllib = None
    if tomllib is not None:
        url = tomllib.loads(text).get("project", {}).get("urls", {}).get("Repository")
    else:
        section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        match = section and re.search(r'^Repository\s*=\s*"([^"]+)"', section.group(1), re.M)
        url = match.group(1) if match else None
    if not url:
        raise ValueError(f"{pyproject} has no [project.urls] Repository = \"https://github.com/OWNER/NAME\": "
                         "add it, the Colab badges and set-up cells are built from it.")
    url = url.rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def github_slug(repo_url: str) -> str:
    """``OWNER/NAME`` from a GitHub address; Colab opens notebooks from GitHub only."""
    match = re.fullmatch(r"https?://github\.com/([^/\s]+)/([^/\s]+)", repo_url)
    if not match:
        raise ValueError(f"Colab opens notebooks from GitHub, but the repository address is {repo_url!r}; "
                         "set [project.urls] Repository to https://github.com/OWNER/NAME in pyproject.toml.")
    return f"{match.group(1)}/{match.group(2)}"


def badge_target(relpath: str) -> str:
    """The notebook the badge opens: itself, except a solution opens its exercise (see module doc)."""
    parts = Path(relpath).parts
    if parts and parts[0] == "solutions":
        return "/".join(("exercises",) + parts[1:])
    return "/".join(parts)


def badge_markdown(relpath: str, repo_url: str, branch: str = DEFAULT_BRANCH) -> str:
    """The badge line for the notebook at ``relpath`` (relative to the repository root)."""
    link = f"https://colab.research.google.com/github/{github_slug(repo_url)}/blob/{branch}/{badge_target(relpath)}"
    return f"[![Open In Colab]({BADGE_IMAGE})]({link})"


def language_of(relpath: str) -> str:
    """"zh" for the Chinese edition's notebooks (``<folder>/zh/...``), else "en"."""
    parts = Path(relpath).parts
    return "zh" if len(parts) > 2 and parts[1] == "zh" else "en"


def setup_source(repo_url: str, branch: str = DEFAULT_BRANCH, language: str = "en") -> str:
    """The set-up cell's code: a pip install from the repository, guarded by the Colab check (and in
    the Chinese edition, the package's language set to Chinese)."""
    template = SETUP_TEMPLATE_ZH if language == "zh" else SETUP_TEMPLATE
    return template.format(requirement=f"cbam-course @ git+{repo_url}@{branch}")


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _set_tags(cell, tags: list) -> None:
    if tags:
        cell.setdefault("metadata", {})["tags"] = tags
    else:
        cell.get("metadata", {}).pop("tags", None)


def unstamp(nb) -> "nbformat.NotebookNode":
    """A copy of ``nb`` without this tool's badge and set-up cell."""
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if SETUP_TAG not in _tags(c)]
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        if BADGE_TAG in _tags(cell) or BADGE_RE.match(cell.source):
            cell.source = BADGE_RE.sub("", cell.source, count=1)
            _set_tags(cell, [t for t in _tags(cell) if t != BADGE_TAG])
    return nb


def stamp(nb, relpath: str, repo_url: str, branch: str = DEFAULT_BRANCH) -> "nbformat.NotebookNode":
    """A copy of ``nb`` with the badge in its first markdown cell and the set-up cell after it.

    ``relpath`` is the notebook's path relative to the repository root (e.g. ``notebooks/01_x.ipynb``):
    the badge's link is built from it.
    """
    nb = unstamp(nb)
    badge = badge_markdown(relpath, repo_url, branch)
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    if first_md is None:  # no text at all: give the badge a cell of its own
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(""))
        first_md = 0
    cell = nb.cells[first_md]
    cell.source = badge + ("\n\n" + cell.source if cell.source.strip() else "")
    _set_tags(cell, _tags(cell) + [BADGE_TAG])

    setup = nbformat.v4.new_code_cell(setup_source(repo_url, branch, language_of(relpath)))
    setup.metadata = nbformat.from_dict({"tags": [SETUP_TAG]})
    if nb.nbformat == 4 and nb.nbformat_minor >= 5:
        setup["id"] = SETUP_ID  # fixed id: re-stamping must not change the file
    else:
        setup.pop("id", None)
    nb.cells.insert(first_md + 1, setup)
    return nb


def is_stamped(nb, relpath: str, repo_url: str, branch: str = DEFAULT_BRANCH) -> bool:
    """True when stamping ``nb`` again would change nothing."""
    return stamp(nb, relpath, repo_url, branch) == nb


def notebooks_in(paths: list[Path]) -> list[Path]:
    """Every ``.ipynb`` in the given folders and files (checkpoints skipped), sorted."""
    found = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += [p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
        elif path.suffix == ".ipynb":
            found.append(path)
        elif not path.exists():
            raise FileNotFoundError(f"{path} does not exist: give notebooks or folders that hold them.")
    return sorted(set(found))


def _relpath(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ValueError(f"{path} is outside {root}: the badge needs its path inside the repository "
                         "(pass --root).") from None


def stamp_files(paths: list[Path], root: Path = ROOT, branch: str = DEFAULT_BRANCH,
                check: bool = False) -> list[Path]:
    """Stamp the notebooks under ``paths`` in place; return those that changed (or, with
    ``check=True``, those that would change, writing nothing)."""
    repo_url = repository_url(Path(root) / "pyproject.toml")
    changed = []
    for path in notebooks_in(paths):
        nb = nbformat.read(path, as_version=4)
        new = stamp(nb, _relpath(path, Path(root)), repo_url, branch)
        if new != nb:
            changed.append(path)
            if not check:
                nbformat.write(new, path)
    return changed


README_BLOCK = re.compile(r"(<!-- colab:begin -->\n).*?(<!-- colab:end -->)", re.S)
FIRST_LESSON = "notebooks/01_concepts.ipynb"


def readme_badges(repo_url: str, branch: str = DEFAULT_BRANCH, lesson: str = FIRST_LESSON) -> str:
    """The README's badge line: the first lesson on Colab and on Binder, from the repository address."""
    slug = github_slug(repo_url)
    binder = f"https://mybinder.org/v2/gh/{slug}/{branch}?urlpath=lab/tree/{lesson}"
    return (badge_markdown(lesson, repo_url, branch)
            + f" [![Binder](https://mybinder.org/badge_logo.svg)]({binder})\n")


# Each README and the lesson its badges open: the Chinese README opens the Chinese lesson 01.
READMES = {"README.md": FIRST_LESSON, "README.zh-CN.md": "notebooks/zh/01_concepts.ipynb"}


def stamp_readme(readme: Path, repo_url: str, branch: str = DEFAULT_BRANCH, check: bool = False,
                 lesson: str = FIRST_LESSON) -> bool:
    """Fill the block between ``<!-- colab:begin -->`` and ``<!-- colab:end -->`` in the README
    with :func:`readme_badges`; True if it changed (or would, with ``check``). No markers: no change."""
    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    new = README_BLOCK.sub(lambda m: m.group(1) + readme_badges(repo_url, branch, lesson) + m.group(2), text)
    if new != text and not check:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks or folders (default: notebooks/ solutions/ exercises/)")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root holding pyproject.toml")
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help="branch the badges and installs point to (default: main)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook needs stamping")
    args = parser.parse_args(argv)
    paths = args.paths or [args.root / f for f in FOLDERS if (args.root / f).is_dir()]
    changed = stamp_files(paths, args.root, args.branch, check=args.check)
    for name, lesson in READMES.items():
        readme = args.root / name
        if not args.paths and stamp_readme(readme, repository_url(args.root / "pyproject.toml"), args.branch,
                                           args.check, lesson):
            changed.append(readme)
    for path in changed:
        print(("needs stamping: " if args.check else "stamped: ") + _relpath(path, args.root))
    if args.check and changed:
        print("run `make colab` to stamp them", file=sys.stderr)
        return 1
    if not changed:
        print("every notebook is stamped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
