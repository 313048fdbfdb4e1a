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
"""
from __future__ import annotations

import re

__all__ = ["REFUSAL", "adapt_makefile", "mention_re"]

REFUSAL = "not part of the student copy"


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


def _refusal(target: str, needs: set[str]) -> str:
    names = sorted(n.rstrip("/") for n in needs)
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (f'\t@echo "make {target}: {REFUSAL} '
            f'(it needs {listed} from the course repository, which your instructor keeps)."')


def adapt_makefile(text: str, missing: set[str], present: set[str] = frozenset({"notebooks", "exercises", "cbam_course"})) -> str:
    """The Makefile for a copy that lacks the top-level names in ``missing`` and holds those in
    ``present`` (see the module doc for the rules)."""
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
            header, new_recipe = " ".join(targets) + ":", [_refusal(targets[0], needs)]
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
                adapted[k] = ("rule", f"{head}:", targets, [_refusal(targets[0], needs)])

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
                    drop = REFUSAL not in cmd and bool(
                        (said and said.group(1) in refusing) or (mention and mention.search(cmd)))
                dropped = drop
                if not drop:  # else: help about something the copy cannot do
                    out.append(cmd)
    text = "\n".join(out) + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)
