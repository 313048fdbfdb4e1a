"""Build the student copy of the course: lessons, exercises, the package and set-up files, no solutions.

    python tools/build_student.py                 # -> dist/student/     (make student)
    python tools/build_student.py --edition zh    # -> dist/student-zh/  (make student LANG=zh)
    python tools/build_student.py --out /tmp/class

A copy holds one edition (:data:`EDITIONS`), so that a learner meets one language:

- **en** (the default): ``notebooks/``, ``exercises/`` (each without its Chinese ``zh/`` folder),
  ``README.md``.
- **zh**, Simplified Chinese: ``notebooks/zh/`` (without its ``translations/``, the maintainers'
  source) and ``exercises/zh/``, under those paths so that their relative links
  (``../../notebooks/zh/04_cbam.ipynb``) resolve as in the repository; ``README.zh-CN.md`` becomes the
  copy's ``README.md`` (a link to it becomes a link to ``README.md``; a link to the English
  ``README.md`` goes online). The English notebooks stay out: a learner who reads Chinese would
  otherwise find two of every lesson side by side and open the wrong one, and ``make test`` would run
  every notebook twice. The Chinese lessons never link to the English ones, and the English edition is
  a copy of its own (and online).

Both hold ``cbam_course/`` (without caches; byte for byte, so with its Chinese message catalogs),
``pyproject.toml``, ``Makefile``, ``environment.yml``, ``data/README.md`` (English: there is no
Chinese one), ``.gitignore`` (and a LICENSE if there is one). What stays out: ``solutions/``,
``tests/``, ``tools/``, ``docs/`` (the instructors' guide), ``CONTRIBUTING.md``, CI files.
Notebooks are copied without outputs. "Missing" below means a top-level name the repository tracks
(git) that the copy does not hold; untracked build output (``dist/``, ``.venv``, ``.pytest_cache``)
is never missing.

A student copy is written for students: every link resolves, every command it mentions works, and it
never mentions files it does not have. The sources keep their instructor-facing lines; the build
rewrites the copy's Markdown (``.md`` files and notebooks' markdown cells), in this order:

1. **Markers.** Text between ``<!-- instructors:begin -->`` and ``<!-- instructors:end -->`` is
   dropped (whole lines when the markers stand on lines of their own, else just the span and the
   blanks before it); ``<!-- student: TEXT -->`` becomes ``TEXT``. The README uses both; the other
   comments (``<!-- colab:begin -->``, ``<!-- lesson-map -->``) stay as they are.
2. **Solutions** (:data:`SOLUTION_RULES`), since ``solutions/`` stays with the instructor:
   - ``generated-note``: the exercise's "> **Generated** from `solutions/X` by `make exercises`" line
     (and the Chinese edition's, "> **本文件由 `make exercises` 从 `solutions/zh/X` 生成**")
     (tools/exercises.py) goes: in the copy there is nothing to regenerate from;
   - ``solved-aside``: "(the solved version is `solutions/X`)" goes, and so does the Chinese
     "（参考答案见 `solutions/zh/X`）";
   - ``solved-sentence``: "[Stuck?] The solved notebook/version is `solutions/X`" becomes
     "Stuck? Ask your instructor", so "...; the package's own version is `cbam_course.Y`" still follows;
     the Chinese "[卡住了？]参考答案[笔记本]是/在 `solutions/zh/X`" becomes "卡住了？请向老师求助".
3. **Online** (:func:`online_links`): any other link to a missing file or folder, and any path to one
   in backticks (`docs/performance.md`), becomes a link to it in the course's repository online
   (``[project.urls] Repository`` in pyproject.toml, branch ``main``, as tools/colab.py uses), named by
   its last part: [`performance.md`](https://github.com/OWNER/NAME/blob/main/docs/performance.md).

Whatever still mentions a missing file or folder (``solutions/``, ``docs/``, ...) or links to one is
printed as a warning (:func:`dead_ends`; tests/test_student.py fails on it). The package is shipped
byte for byte and is not rewritten: its docstrings may cite ``docs/``.

The Makefile is adapted, not copied blindly (``tools/student_makefile.py`` says how), so that in the
student copy ``make lab``, ``make test``, ``make notebooks`` and ``make clean`` work as in the course
repository, in the copy's edition: in the Chinese copy ``make lab`` opens ``notebooks/zh/01_concepts.ipynb``
in a Chinese JupyterLab, with no ``LANG=zh`` needed, ``make test`` runs the Chinese notebooks, and
``make help`` and the refusals speak Chinese. The README gets a note on top (:data:`STUDENT_NOTE`, in
the edition's language). The build refuses to finish if a solution marker (``### BEGIN SOLUTION``) is in any copied file.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import posixpath
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from student_makefile import REFUSAL, adapt_makefile, mention_re

ROOT = Path(__file__).resolve().parents[1]
FILES = ("pyproject.toml", "Makefile", "environment.yml", "data/README.md", ".gitignore",
         "LICENSE", "LICENSE.md", "LICENSE.txt")
REQUIRED = ("notebooks", "exercises", "cbam_course", "pyproject.toml", "Makefile")
PACKAGE = "cbam_course"  # shipped byte for byte: never rewritten
WITHHELD = ("solutions",)  # never linked to online: these stay with the instructor
BRANCH = "main"  # the branch tools/colab.py's badges point to
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
MARKER_RE = re.compile(r"^[ \t]*#+[ \t]*(BEGIN|END)[ \t]+SOLUTION\b", re.M)
STUDENT_NOTE = ("> **Student copy.** This folder holds the lessons and the exercises; the solutions and the "
                "unit tests stay with your instructor. `make lab` and `make test` work here as described "
                "below (`make test` runs the notebooks).\n\n")
STUDENT_NOTE_ZH = ("> **学生版。** 这个文件夹里是课程和练习；参考答案和单元测试由你的老师保管。在这里，"
                   "`make lab` 会在 JupyterLab 中打开第 1 课，`make test` 会以快速模式运行所有笔记本。\n\n")


@dataclass(frozen=True)
class Edition:
    """What one edition's copy holds: ``folders`` are (source, names left out at its top level),
    each copied to the same path in the copy; ``readme`` becomes the copy's ``README.md``."""

    name: str
    folders: tuple[tuple[str, tuple[str, ...]], ...]
    readme: str
    note: str
    out: str  # the default output folder, under ROOT

    @property
    def renamed(self) -> dict[str, str]:
        """{repository path: its path in the copy} for the files the copy holds under another name."""
        return {} if self.readme == "README.md" else {self.readme: "README.md"}


EDITIONS = {
    "en": Edition("en", (("notebooks", ("zh",)), ("exercises", ("zh",)), (PACKAGE, ())),
                  "README.md", STUDENT_NOTE, "dist/student"),
    "zh": Edition("zh", (("notebooks/zh", ("translations",)), ("exercises/zh", ()), (PACKAGE, ())),
                  "README.zh-CN.md", STUDENT_NOTE_ZH, "dist/student-zh"),
}


# --------------------------------------------------------------------------------------------
# What the copy lacks
# --------------------------------------------------------------------------------------------

def _ignored_by(root: Path):
    """A test ``name -> bool`` for the simple top-level patterns of ``root/.gitignore``."""
    patterns = []
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        for line in gitignore.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "!")):
                patterns.append(line.strip("/").split("/")[0])
    return lambda name: any(fnmatch.fnmatch(name, p) for p in patterns)


def _top_level_names(root: Path) -> set[str]:
    """Top-level names the repository tracks (git); without git, those that exist and are not
    git-ignored. Build output (``dist``, ``.venv``) is neither, so it never counts as missing."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
        names = {line.split("/", 1)[0] for line in out.splitlines() if line}
    except (OSError, subprocess.CalledProcessError):
        names = set()
    if names:
        return names
    ignored = _ignored_by(root)
    return {p.name for p in root.iterdir() if p.name != ".git" and not ignored(p.name)}


# --------------------------------------------------------------------------------------------
# The Markdown
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One rewrite of the copy's Markdown: ``pattern`` (a regex) becomes ``replacement``."""

    name: str
    pattern: re.Pattern
    replacement: str


SOLUTION_RULES = (
    # the line tools/exercises.py's _note() writes (tests/test_student.py keeps the two in step)
    Rule("generated-note",
         re.compile(r"^> \*\*(?:Generated\*\* from|本文件由 `[^`\n]*` 从) `solutions/[^`\n]*`[^\n]*(?:\n|\Z)(?:[ \t]*\n)?", re.M), ""),
    Rule("solved-aside",
         re.compile(r"[ \t]*\(the\s+solved\s+(?:notebook|version)\s+is\s+`solutions/[^`]*`\)", re.I), ""),
    Rule("solved-aside-zh",  # "（参考答案见 `solutions/zh/01_concepts.ipynb`）"
         re.compile(r"[ \t]*[（(]\s*参考答案(?:笔记本)?\s*(?:见|是|在)\s*`solutions/[^`]*`\s*[）)]"), ""),
    Rule("solved-sentence",
         re.compile(r"(?:Stuck\?\s+)?The\s+solved\s+(?:notebook|version)\s+is\s+`solutions/[^`]*`"),
         "Stuck? Ask your instructor"),
    Rule("solved-sentence-zh",  # "卡住了？参考答案笔记本是 `solutions/zh/X`", "参考答案在 `solutions/zh/X`"
         re.compile(r"(?:卡住了[？?]\s*)?参考答案(?:笔记本)?\s*(?:见|是|在)\s*`solutions/[^`]*`"),
         "卡住了？请向老师求助"),
)
_BLOCK_RE = re.compile(r"^[ \t]*<!-- instructors:begin -->[ \t]*\n.*?^[ \t]*<!-- instructors:end -->[ \t]*(?:\n|\Z)",
                       re.M | re.S)
_SPAN_RE = re.compile(r"[ \t]*<!-- instructors:begin -->.*?<!-- instructors:end -->", re.S)
_STUDENT_RE = re.compile(r"<!-- student:[ \t]*\n?(.*?)\n?[ \t]*-->", re.S)
_LINK_RE = re.compile(r"(?<!!)\[([^\]\n]*)\]\(([^)\s]+)\)")


def apply_markers(text: str) -> str:
    """Drop the instructors' spans and blocks, and uncomment the students' text (rule 1)."""
    text = _BLOCK_RE.sub("", text)
    text = _SPAN_RE.sub("", text)
    return _STUDENT_RE.sub(lambda m: m.group(1), text)


def _repository_url(root: Path) -> str | None:
    """``[project.urls] Repository`` from pyproject.toml (as tools/colab.py reads it), or None."""
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    match = section and re.search(r'^Repository\s*=\s*"([^"]+)"', section.group(1), re.M)
    if not match:
        return None
    url = match.group(1).rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def _link_parts(match: re.Match, folder: str) -> tuple[str, str | None, str, str]:
    """A Markdown link's label, its target as a path relative to the copy's root (None for an
    address or an anchor, which stay as they are), and its ``#`` and fragment."""
    label, target = match.group(1), match.group(2)
    if re.match(r"[a-zA-Z][\w+.-]*:|[#/]", target):
        return label, None, "", ""
    path, hash_, fragment = target.partition("#")
    return label, posixpath.normpath(posixpath.join(folder, path)), hash_, fragment


def renamed_links(text: str, folder: str, renamed: dict[str, str], url: str | None) -> str:
    """The copy holds some files under another name (``renamed``: the Chinese copy's ``README.md`` is
    the repository's ``README.zh-CN.md``). A link or backticked path to such a file points to its name
    in the copy; a link to the repository file whose name it took (the English ``README.md``) points
    to that file online, not to the copy's file of the same name."""
    if not renamed:
        return text
    taken = {new: old for old, new in renamed.items()}

    def link(match: re.Match) -> str:
        label, path, hash_, fragment = _link_parts(match, folder)
        if path is None:
            return match.group(0)
        if path in renamed:
            new = posixpath.relpath(renamed[path], folder or ".")
            return f"[{label.replace(path, renamed[path])}]({new}{hash_}{fragment})"
        if path in taken and url:
            return f"[{label}]({url}/blob/{BRANCH}/{path}{hash_}{fragment})"
        return match.group(0)

    text = _LINK_RE.sub(link, text)
    for old, new in renamed.items():
        text = re.sub(r"(?<![\w./-])" + re.escape(old) + r"(?![\w.-])", new, text)
    return text


def online_links(text: str, folder: str, root: Path, missing: set[str], url: str | None) -> str:
    """Rule 3: links and backticked paths to missing files (``folder`` is the text's own folder,
    relative to ``root``, for relative links) become links to the repository online."""
    online = {n for n in missing if n not in WITHHELD}
    mention = mention_re(online)
    if not url or mention is None:
        return text

    def address(path: str) -> str | None:
        if path.split("/", 1)[0] not in online or not (root / path).exists():
            return None
        kind = "tree" if (root / path).is_dir() else "blob"
        return f"{url}/{kind}/{BRANCH}/{path.rstrip('/')}"

    def name(path: str) -> str:
        return posixpath.basename(path.rstrip("/")) or path

    def link(match: re.Match) -> str:
        label, path, hash_, fragment = _link_parts(match, folder)
        if path is None:
            return match.group(0)
        where = address(path)
        if where is None:
            return match.group(0)
        for said in sorted({match.group(2).partition("#")[0], path}, key=len, reverse=True):
            label = label.replace(said, name(path))  # "[docs/x.md](...)" -> "[x.md](...)"
        return f"[{label}]({where}{hash_}{fragment})"

    def code(match: re.Match) -> str:
        path = match.group(1)
        where = address(path)
        return match.group(0) if where is None else f"[`{name(path)}`]({where})"

    text = _LINK_RE.sub(link, text)
    return re.sub(r"(?<!\[)`(" + mention.pattern + r"[^`\s]*)`", code, text)


def rewrite_markdown(text: str, folder: str, root: Path, missing: set[str], url: str | None,
                     renamed: dict[str, str] | None = None) -> str:
    """The copy's version of one Markdown text: markers, then the solution rules, then the renamed
    files' links (:func:`renamed_links`), then links online."""
    new = apply_markers(text)
    for rule in SOLUTION_RULES:
        new = rule.pattern.sub(rule.replacement, new)
    new = renamed_links(new, folder, renamed or {}, url)
    new = online_links(new, folder, root, missing, url)
    return new if new == text else re.sub(r"\n{3,}", "\n\n", new).rstrip() + ("\n" if text.endswith("\n") else "")


def _text_files(out: Path):
    """(path, relative path) of the copy's text files the rewrite and the checks look at: all but the
    package's."""
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel.split("/", 1)[0] != PACKAGE:
            yield path, rel


def _rewrite_copy(out: Path, root: Path, missing: set[str], renamed: dict[str, str] | None = None) -> None:
    """Clear notebook outputs and apply the Markdown rules to ``.md`` files and markdown cells."""
    url = _repository_url(root)
    for path in sorted(out.rglob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        folder = path.parent.relative_to(out).as_posix()
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                cell["outputs"], cell["execution_count"] = [], None
                changed = True
            if cell.get("cell_type") == "markdown" and not path.is_relative_to(out / PACKAGE):
                source = "".join(cell.get("source", ""))
                new = rewrite_markdown(source, folder, root, missing, url, renamed)
                if new != source:
                    cell["source"] = new.splitlines(keepends=True)
                    changed = True
        if changed:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for path, rel in _text_files(out):
        if path.suffix == ".md":
            text = path.read_text(encoding="utf-8")
            folder = posixpath.dirname(rel)
            new = rewrite_markdown(text, "" if folder == "." else folder, root, missing, url, renamed)
            if new != text:
                path.write_text(new, encoding="utf-8")


def dead_ends(out: Path, missing: set[str]) -> list[str]:
    """What in the copy (the package aside) still names a missing file or folder, or links to a
    relative address that is not there: ``file[ cell N]: text``. Empty for a class-ready copy."""
    mention = mention_re(missing)
    found = []
    for path, rel in _text_files(out):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if path.suffix == ".ipynb":
            parts = [(f"{rel} cell {i}", "".join(c.get("source", "")), c.get("cell_type") == "markdown")
                     for i, c in enumerate(json.loads(text).get("cells", []))]
        else:
            parts = [(rel, text, path.suffix == ".md")]
        for where, body, markdown in parts:
            if mention:
                found += [f"{where}: {m.group(0)!r}" for m in mention.finditer(body)]
            if not markdown:
                continue
            for match in _LINK_RE.finditer(body):
                target = match.group(2).partition("#")[0]
                if target and not re.match(r"[a-zA-Z][\w+.-]*:|/", target) and not (path.parent / target).exists():
                    found.append(f"{where}: link to {target}")
    return found


def find_markers(folder: Path) -> list[str]:
    """Where solution markers sit under ``folder``: ``file:line``, or ``notebook cell N`` (from 0)."""
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".ipynb":
            cells = json.loads(text).get("cells", [])
            hits += [f"{rel} cell {i}" for i, c in enumerate(cells) if MARKER_RE.search("".join(c.get("source", "")))]
        else:
            hits += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}" for m in MARKER_RE.finditer(text)]
    return hits


def _ignoring(top: Path, names: tuple[str, ...]):
    """``SKIP``, and ``names`` at the top level of ``top`` alone (``zh`` in ``notebooks/``)."""
    def ignore(directory, entries):
        skipped = set(SKIP(directory, entries))
        if Path(directory) == top:
            skipped |= set(names) & set(entries)
        return skipped
    return ignore


def build(root: Path = ROOT, out: Path | None = None, edition: str = "en") -> Path:
    """Build the student copy of ``edition`` (:data:`EDITIONS`) of the course at ``root`` into ``out``
    (default ``root/dist/student``, ``root/dist/student-zh`` for zh), replacing what was there.
    Returns ``out``. Dead ends (:func:`dead_ends`) are printed as warnings."""
    if edition not in EDITIONS:
        raise ValueError(f"--edition {edition!r}: the course has the editions {', '.join(EDITIONS)}.")
    ed = EDITIONS[edition]
    root = Path(root).resolve()
    out = Path(out).resolve() if out else root / ed.out
    needed = REQUIRED + tuple(source for source, _ in ed.folders if source not in REQUIRED)
    lacking = [name for name in needed + tuple(ed.renamed) if not (root / name).exists()]
    if any(name in REQUIRED for name in lacking):
        raise FileNotFoundError(f"{root} lacks {', '.join(lacking)}: run this from the course repository "
                                "(or pass its path as --root).")
    if lacking:
        raise FileNotFoundError(f"{root} lacks {', '.join(lacking)}, which the {edition} edition's copy is "
                                "made of: `make translations` builds the Chinese notebooks, README.zh-CN.md "
                                "is written by hand (or build the English copy: --edition en).")
    if out == root or out in root.parents or out.parent == root:
        raise ValueError(f"--out {out} would overwrite the repository; use a folder under dist/.")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for source, left_out in ed.folders:
        shutil.copytree(root / source, out / source, ignore=_ignoring(root / source, left_out))
    for name in FILES + (ed.readme,):
        if (root / name).is_file():
            target = out / ed.renamed.get(name, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, target)
    present = {p.name for p in out.iterdir()}
    missing = _top_level_names(root) - present
    makefile = adapt_makefile((root / "Makefile").read_text(encoding="utf-8"), missing, present, edition)
    (out / "Makefile").write_text(makefile, encoding="utf-8")
    readme = out / "README.md"
    if readme.exists():
        readme.write_text(ed.note + readme.read_text(encoding="utf-8"), encoding="utf-8")
    _rewrite_copy(out, root, missing, ed.renamed)
    hits = find_markers(out)
    if hits:
        shutil.rmtree(out)
        raise RuntimeError("solution markers found, student copy removed: " + ", ".join(hits)
                           + "\nRegenerate exercises/ from solutions/ (`make exercises`) and build again.")
    for line in dead_ends(out, missing):
        print(f"warning: dead end in the student copy: {line}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the course repository (default: this one)")
    parser.add_argument("--edition", choices=sorted(EDITIONS), default="en",
                        help="en (default) or zh, Simplified Chinese (make student LANG=zh)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to build (default: ROOT/dist/student, ROOT/dist/student-zh for zh)")
    args = parser.parse_args(argv)
    try:
        out = build(args.root, args.out, args.edition)
    except (FileNotFoundError, ValueError) as error:
        print(f"make student: {error}", file=sys.stderr)
        return 2
    count = sum(1 for _ in out.rglob("*.ipynb"))
    print(f"student copy ({args.edition}): {out} ({count} notebooks, no solutions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
