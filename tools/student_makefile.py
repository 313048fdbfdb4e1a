"""The student copy's Makefile (``tools/build_student.py``): the course's Makefile adapted to a copy
that lacks some top-level folders.

Its recipes name folders the copy lacks, so it is adapted, not copied blindly:

- a pytest line that lists several folders keeps the ones that are there
  (``make notebooks`` runs nbval over ``notebooks exercises``, not ``solutions``);
- any other rule that needs a missing name (``make exercises`` needs ``solutions/``, ``make unit``
  needs ``tests/``) *refuses*: it prints a one-line "not part of the student copy" explanation and
  succeeds; a refusing pattern rule (``.venv-py%/.installed``) is dropped;
- a rule that works drops the refusing targets among its prerequisites (``make test``, which is
  ``unit notebooks`` in the repository, runs the notebooks); left with nothing to do, it refuses too;
- a line that only removes things (``rm -rf $(VENV) dist .pytest_cache``) needs nothing, so
  ``make clean`` works;
- ``make help`` lines about a refusing target or a missing name are dropped, and so are comment
  blocks that mention a missing name.

So in the student copy ``make lab``, ``make test``, ``make notebooks`` and ``make clean`` work as in the
course repository, and ``make help`` lists only what works.

A copy holds one edition, so its Makefile is that edition's (:func:`set_edition`): ``EDITION`` is fixed
(``LANG`` no longer picks one, since the copy has no other), and ``make help`` drops its
``make lab LANG=zh`` line. In the Chinese copy ``make lab`` thus opens ``notebooks/zh/01_concepts.ipynb``
in a Chinese JupyterLab, and ``make help`` (:data:`HELP_ZH`) and the refusals (:data:`REFUSAL_ZH`) are
in Chinese; a help line without a Chinese text stays English (tests/test_student.py fails on it).
"""
from __future__ import annotations

import re

__all__ = ["HELP_ZH", "REFUSAL", "REFUSAL_ZH", "adapt_makefile", "mention_re", "refusal", "set_edition"]

REFUSAL = "not part of the student copy"
REFUSAL_ZH = "不属于学生版"
# `make help` in the Chinese copy: the text after "make TARGET", for the targets that work there.
HELP_ZH = {
    "lab": "创建 .venv，安装课程，并在 JupyterLab 中打开第 1 课（界面和课程都是简体中文）",
    "test": "创建 .venv，以快速模式运行每一个笔记本（课程和练习）",
    "notebooks": "以快速模式运行每一个笔记本（课程和练习）",
    "clean": "删除 .venv 和生成的文件",
}


def refusal(edition: str = "en") -> str:
    """The words by which a refusing rule of ``edition``'s copy says it does nothing there."""
    return REFUSAL_ZH if edition == "zh" else REFUSAL


def mention_re(missing: set[str]) -> re.Pattern | None:
    """Matches a path that starts with a missing name: ``docs/...`` for a folder, ``CONTRIBUTING.md``
    for a file; not inside an address (``.../main/docs/x.md``) or another name."""
    names = sorted(missing)
    if not names:
        return None
    alternatives = "|".join(re.escape(n) + ("/" if "." not in n.lstrip(".") else r"(?![\w.-])")
                            for n in names)
    return re.compile(rf"(?<![\w./-])(?:{alternatives})")


def _path_tokens(line: str) -> list[str]:
    return re.findall(r"(?<![\w$(.-])([A-Za-z_.][\w.-]*)(?=/|\s|$|['\"])", line)


RULE_RE = re.compile(r"^([A-Za-z0-9_.$()/%-]+(?:\s+[A-Za-z0-9_.$()/%-]+)*)\s*:(?!=)")


def _parse_makefile(lines: list[str]) -> list[tuple]:
    """Items in order: ("rule", header, targets, recipe lines), ("comment", lines), ("line", line)."""
    items: list[tuple] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = RULE_RE.match(line)
        if line.startswith("#"):
            block = []
            while i < len(lines) and lines[i].startswith("#"):
                block.append(lines[i])
                i += 1
            items.append(("comment", block))
            continue
        if not match or line.startswith("\t") or line.startswith(".PHONY"):
            items.append(("line", line))
            i += 1
            continue
        recipe = []
        i += 1
        while i < len(lines) and (lines[i].startswith("\t") or (recipe and lines[i - 1].endswith("\\"))):
            recipe.append(lines[i])
            i += 1
        items.append(("rule", line, match.group(1).split(), recipe))
    return items


def _refusal(target: str, needs: set[str], edition: str = "en") -> str:
    names = sorted(n.rstrip("/") for n in needs)
    if edition == "zh":
        return (f'\t@echo "make {target}：{REFUSAL_ZH}（它需要课程仓库中的 {"、".join(names)}，'
                f'由你的老师保管）。"')
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (f'\t@echo "make {target}: {REFUSAL} '
            f'(it needs {listed} from the course repository, which your instructor keeps)."')


# `@echo "make lab        text"`: a help line (not one for a variant, `make html MODE=quick  ...`)
_HELP_LINE_RE = re.compile(r'^(\t@?echo\s+"make\s+([\w.-]+)[ \t]+)(?![ \t])(?!\S*=)[^"]*"\s*$')


def set_edition(text: str, edition: str) -> str:
    """The adapted Makefile of a copy that holds ``edition`` alone (see the module doc)."""
    fixed = (f"# This copy holds the {'Simplified Chinese' if edition == 'zh' else 'English'} edition alone: "
             f"LANG does not change it.\nEDITION  := {edition}")
    text, count = re.subn(r"^EDITION[ \t]*:?=.*$", lambda _: fixed, text, count=1, flags=re.M)
    if not count:
        raise ValueError("the Makefile has no `EDITION :=` line to set the student copy's edition by")
    text = re.sub(r'^\t@?echo\s+["\']make\s+[\w.-]+\s+LANG=\S+.*\n', "", text, flags=re.M)
    if edition != "zh":
        return text

    out, translated = [], False
    for line in text.split("\n"):
        continuation = re.match(r'^\t@?echo\s+["\']\s', line)
        if continuation and translated:
            continue  # the rest of a help text that was translated whole
        match = None if continuation else _HELP_LINE_RE.match(line)
        translated = bool(match and match.group(2) in HELP_ZH)
        out.append(f'{match.group(1)}{HELP_ZH[match.group(2)]}"' if translated else line)
    return "\n".join(out)


def adapt_makefile(text: str, missing: set[str], present: set[str] = frozenset({"notebooks", "exercises", "cbam_course"}),
                   edition: str | None = None) -> str:
    """The Makefile for a copy that lacks the top-level names in ``missing`` and holds those in
    ``present`` (see the module doc for the rules), and, given an ``edition`` ("en" or "zh"), holds
    that edition alone (:func:`set_edition`)."""
    said_no = refusal(edition or "en")
    missing = {m.rstrip("/") for m in missing if m not in {"", "."}}
    mention = mention_re(missing)
    items = _parse_makefile(text.splitlines())
    adapted: list[tuple] = []
    refusing: dict[str, set[str]] = {}  # target -> the missing names it needs
    for item in items:
        if item[0] != "rule":
            adapted.append(item)
            continue
        _, header, targets, recipe = item
        new_recipe, needs = [], set()
        for cmd in recipe:
            if re.match(r"^\t@?echo\b", cmd) or re.match(r"^\t[@-]*\s*rm\b", cmd):
                new_recipe.append(cmd)  # help text is judged below; removing needs nothing
                continue
            names = [t.split("/", 1)[0] for t in _path_tokens(cmd)]
            absent = sorted({n for n in names if n in missing})
            if not absent:
                new_recipe.append(cmd)
            elif "pytest" in cmd and any(n in present for n in names):
                for name in absent:
                    cmd = re.sub(rf"\s+{re.escape(name)}/?(?=\s|$)", "", cmd)
                new_recipe.append(cmd)
            else:
                needs.update(absent)
        if needs:  # explain instead; and drop the prerequisites (no need to install for a message)
            refusing.update({t: needs for t in targets})
            if any("%" in t for t in targets):
                continue  # a pattern rule nothing in the copy asks for any more
            header, new_recipe = " ".join(targets) + ":", [_refusal(targets[0], needs, edition or "en")]
        adapted.append(("rule", header, targets, new_recipe))
    # A rule that works drops the refusing targets it depends on (`test: unit notebooks` runs the
    # notebooks only); one left with nothing to do refuses as well.
    changed = True
    while changed:
        changed = False
        for k, item in enumerate(adapted):
            if item[0] != "rule" or any(t in refusing for t in item[2]):
                continue
            _, header, targets, recipe = item
            head, _, prerequisites = header.partition(":")
            names = prerequisites.split()
            kept = [n for n in names if n not in refusing]
            if kept == names:
                continue
            changed = True
            if kept or recipe:
                adapted[k] = ("rule", f"{head}:" + "".join(f" {n}" for n in kept), targets, recipe)
            else:
                needs = set().union(*(refusing[n] for n in names))
                refusing.update({t: needs for t in targets})
                adapted[k] = ("rule", f"{head}:", targets, [_refusal(targets[0], needs, edition or "en")])

    out: list[str] = []
    for item in adapted:
        if item[0] == "line":
            out.append(item[1])
        elif item[0] == "comment":
            if mention is None or not any(mention.search(line) for line in item[1]):
                out.extend(item[1])
        else:
            _, header, _, recipe = item
            out.append(header)
            dropped = False
            for cmd in recipe:
                said = re.match(r"^\t@?echo\s+[\"']?make\s+([\w.-]+)", cmd)
                if not re.match(r"^\t@?echo\b", cmd):
                    drop = False  # only help text is dropped
                elif re.match(r"^\t@?echo\s+[\"']\s", cmd):  # a help line's continuation goes with it
                    drop = dropped or bool(mention and mention.search(cmd))
                else:
                    drop = said_no not in cmd and bool(
                        (said and said.group(1) in refusing) or (mention and mention.search(cmd)))
                dropped = drop
                if not drop:  # else: help about something the copy cannot do
                    out.append(cmd)
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out) + "\n")
    return text if edition is None else set_edition(text, edition)
