"""The Simplified Chinese edition of the notebooks: generated from the English ones and one translation
file per notebook, so the English cells stay the one source.

    python tools/translate.py check               # what is missing, stale or wrong; exit 1 if anything
    python tools/translate.py todo notebooks/02_channel_attention.ipynb [--stub]
    python tools/translate.py build               # write notebooks/zh/, solutions/zh/ (make translations)

Each English notebook in ``notebooks/`` and ``solutions/`` has its translation file in
``<folder>/zh/translations/<name>.md``: one section per cell, headed by the cell's id and a hash of
the English text it translates::

    <!-- cell l02-03 5f2c0e9a1b7d -->
    ## 1. 通道注意力：关注“什么”
    ...

Every markdown cell is translated. A code cell is translated where a learner reads something in it
(a comment, or a string with a space in it: a printed sentence, a title): the translated cell must
be the same program, strings and comments aside (their syntax trees are compared; an f-string's fields
may come in another order, as a Chinese sentence often needs). The badge and the
Colab set-up cell are not translated: ``tools/colab.py`` stamps the Chinese notebooks with their own,
which also sets ``CBAM_COURSE_LANG=zh`` so that the package speaks Chinese there. ``build`` writes
the Chinese notebooks (metadata ``cbam_course.language = "zh"``); ``make translations`` also stamps
them and generates ``exercises/zh/`` from ``solutions/zh/``.

When an English cell changes, the hash in its section no longer matches: that translation is
stale, the build keeps the English cell, and tests/test_translations.py fails naming the notebook and
the cell. ``todo`` prints, for one notebook, each cell to translate or to update, with its English
text, the old translation and the hash to write; ``--stub`` appends sections for the missing cells,
in English and marked ``<!-- TODO -->``, to be translated in place (a marked section counts as missing).
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from colab import SETUP_TAG, unstamp  # noqa: E402

FOLDERS = ("notebooks", "solutions")
LANGUAGE = "zh"
HEADER_RE = re.compile(r"^<!-- cell (\S+) ([0-9a-f]{12}) -->[ \t]*$", re.M)
TODO = "<!-- TODO -->"
FILE_NOTE = ("<!-- The Simplified Chinese of {source}: one section per cell, headed by its id and a hash of the\n"
             "     English text it translates (tools/translate.py). Edit the text under a header, never a header. -->\n")


def english_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (root / folder).glob("*.ipynb"))


def chinese_path(english: Path) -> Path:
    return english.parent / LANGUAGE / english.name


def translation_path(english: Path) -> Path:
    return english.parent / LANGUAGE / "translations" / f"{english.stem}.md"


def text_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def read_translation(path: Path) -> dict[str, tuple[str, str]]:
    """``{cell id: (hash of the English text, translated text)}``."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    heads = list(HEADER_RE.finditer(text))
    out = {}
    for head, following in zip(heads, heads[1:] + [None]):
        body = text[head.end():following.start() if following else len(text)]
        out[head.group(1)] = (head.group(2), body.strip("\n"))
    return out


def _code(source: str) -> str:
    """A cell's code made parseable: IPython magics and shell escapes become ``pass``."""
    return re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.M)


def learner_reads(cell) -> bool:
    """Whether a learner reads something in this cell that a translation must cover."""
    if SETUP_TAG in cell.get("metadata", {}).get("tags", []):
        return False
    if cell.cell_type == "markdown":
        return bool(cell.source.strip())
    if cell.cell_type != "code":
        return False
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(_code(cell.source)).readline))
    except (tokenize.TokenError, SyntaxError):
        return True
    return any(t.type == tokenize.COMMENT or (t.type == tokenize.STRING and re.search(r"[A-Za-z]{2,} [A-Za-z]", t.string))
               or (getattr(tokenize, "FSTRING_MIDDLE", None) == t.type and re.search(r"[A-Za-z]{2,} [A-Za-z]", t.string))
               for t in tokens)


class _Blank(ast.NodeTransformer):
    """Strings blanked (their text is free to change), everything else kept. An f-string keeps its
    fields, in any order: a Chinese sentence often names them in another order than the English."""

    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant(value=""), node) if isinstance(node.value, str) else node

    def visit_FormattedValue(self, node):
        node.value = self.visit(node.value)
        return node   # its conversion and format spec (":.3f") are code: kept

    def visit_JoinedStr(self, node):
        fields = [self.visit(v) for v in node.values if isinstance(v, ast.FormattedValue)]
        return ast.copy_location(ast.JoinedStr(values=sorted(fields, key=ast.dump)), node)


def same_program(english: str, translated: str) -> bool:
    """The two cells are one program, strings and comments aside."""
    try:
        a, b = (ast.dump(_Blank().visit(ast.parse(_code(s)))) for s in (english, translated))
    except SyntaxError:
        return False
    return a == b


@dataclass
class Problem:
    notebook: str
    cell: str
    what: str   # "missing", "stale", "orphan" or "not the same program"

    def __str__(self) -> str:
        return f"{self.notebook}: cell {self.cell}: {self.what}"


def problems_of(english: Path, root: Path = ROOT) -> list[Problem]:
    """What is missing, stale or wrong in ``english``'s translation."""
    nb = unstamp(nbformat.read(english, as_version=4))
    entries = read_translation(translation_path(english))
    name = english.relative_to(root).as_posix()
    out = []
    ids = set()
    for cell in nb.cells:
        ids.add(cell.get("id"))
        entry = entries.get(cell.get("id"))
        if entry is None or TODO in entry[1]:
            if learner_reads(cell):
                out.append(Problem(name, cell.get("id"), "missing"))
            continue
        if entry[0] != text_hash(cell.source):
            out.append(Problem(name, cell.get("id"), "stale: the English cell changed since it was translated"))
        elif cell.cell_type == "code" and not same_program(cell.source, entry[1]):
            out.append(Problem(name, cell.get("id"), "not the same program as the English cell (only strings and comments may differ)"))
    out += [Problem(name, cid, "orphan: no English cell has this id") for cid in entries if cid not in ids]
    return out


def build_one(english: Path) -> nbformat.NotebookNode:
    """The Chinese notebook of ``english``: its cells translated where the translation is current,
    in English elsewhere; unstamped (``tools/colab.py`` stamps it)."""
    nb = unstamp(nbformat.read(english, as_version=4))
    entries = read_translation(translation_path(english))
    zh = copy.deepcopy(nb)
    for cell in zh.cells:
        entry = entries.get(cell.get("id"))
        if entry and TODO not in entry[1] and entry[0] == text_hash(cell.source):
            if cell.cell_type == "markdown" or same_program(cell.source, entry[1]):
                cell.source = entry[1]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    zh.metadata["cbam_course"] = {"language": LANGUAGE, "source": english.relative_to(english.parents[1]).as_posix()}
    return zh


def build(root: Path = ROOT) -> list[Path]:
    """Write every Chinese notebook whose content changed; returns those written."""
    written = []
    for english in english_notebooks(root):
        target = chinese_path(english)
        new = nbformat.writes(build_one(english)) + "\n"
        old = target.read_text(encoding="utf-8") if target.is_file() else None
        if old is None or unstamp(nbformat.reads(old, as_version=4)) != nbformat.reads(new, as_version=4):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(new, encoding="utf-8")
            written.append(target)
    return written


def todo(english: Path, stub: bool = False) -> str:
    """What to translate or update in ``english``'s translation, as text to read (and with
    ``stub``, missing sections appended to the file in English, marked TODO)."""
    nb = unstamp(nbformat.read(english, as_version=4))
    entries = read_translation(translation_path(english))
    problems = {p.cell: p for p in problems_of(english)}
    lines, stubs = [], []
    for cell in nb.cells:
        problem = problems.get(cell.get("id"))
        if problem is None:
            continue
        lines += [f"== cell {cell.get('id')} ({cell.cell_type}): {problem.what}",
                  f"   write its header as: <!-- cell {cell.get('id')} {text_hash(cell.source)} -->",
                  "-- English:", cell.source]
        if cell.get("id") in entries:
            lines += ["-- the translation so far:", entries[cell.get("id")][1]]
        lines.append("")
        if stub and problem.what == "missing" and cell.get("id") not in entries:
            stubs.append(f"<!-- cell {cell.get('id')} {text_hash(cell.source)} -->\n{TODO}\n{cell.source}\n")
    if stubs:
        path = translation_path(english)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = "" if path.is_file() else FILE_NOTE.format(source=english.relative_to(ROOT).as_posix())
        with open(path, "a", encoding="utf-8") as f:
            f.write(head + "\n" + "\n".join(stubs))
    return "\n".join(lines) or f"{english.relative_to(ROOT)}: nothing to translate"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="list what is missing, stale or wrong; exit 1 if anything is")
    sub.add_parser("build", help="write the Chinese notebooks")
    t = sub.add_parser("todo", help="print what to translate in one notebook")
    t.add_argument("notebook", type=Path)
    t.add_argument("--stub", action="store_true", help="append the missing sections in English, marked TODO")
    args = p.parse_args(argv)
    if args.command == "build":
        for path in build():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.command == "todo":
        print(todo(args.notebook.resolve(), args.stub))
        return 0
    found = [problem for english in english_notebooks() for problem in problems_of(english)]
    for problem in found:
        print(problem)
    print(f"{len(found)} problem(s): `python tools/translate.py todo NOTEBOOK` shows what to write" if found
          else "every translation is current")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
