"""Build the student copy of the course: lessons, exercises, the package and set-up files, no solutions.

    python tools/build_student.py                 # -> dist/student/  (make student)
    python tools/build_student.py --out /tmp/class

What goes in: ``notebooks/``, ``exercises/``, ``cbam_course/`` (without caches), ``pyproject.toml``,
``Makefile``, ``environment.yml``, ``README.md``, ``data/README.md``, ``.gitignore`` (and a LICENSE
if there is one). What stays out: ``solutions/``, ``tests/``, ``tools/``, ``docs/`` (the instructors'
guide), CI files. Notebooks are copied without outputs.

The Makefile is adapted, not copied blindly, because its recipes name folders the copy lacks:

- a pytest line that lists several folders keeps the ones that are there
  (``make notebooks`` runs nbval over ``notebooks exercises``, not ``solutions``);
- any other rule that needs a missing folder (``make exercises`` needs ``solutions/``, ``make unit``
  needs ``tests/``) prints a one-line explanation and succeeds, so ``make test`` still works;
- ``make help`` lines about missing folders are dropped.

So in the student copy ``make lab`` and ``make test`` work as in the course repository.
The build refuses to finish if a solution marker (``### BEGIN SOLUTION``) is in any copied file.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "exercises", "cbam_course")
FILES = ("pyproject.toml", "Makefile", "environment.yml", "README.md", "data/README.md", ".gitignore",
         "LICENSE", "LICENSE.md", "LICENSE.txt")
REQUIRED = ("notebooks", "exercises", "cbam_course", "pyproject.toml", "Makefile")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info")
MARKER_RE = re.compile(r"^[ \t]*#+[ \t]*(BEGIN|END)[ \t]+SOLUTION\b", re.M)
STUDENT_NOTE = ("> **Student copy.** This folder holds the lessons and the exercises; the solutions stay "
                "with your instructor. `make lab` and `make test` work here as described below.\n\n")


def _top_level_names(root: Path) -> set[str]:
    """Top-level names the repository tracks (git), or that exist (no git): what a Makefile may name."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True).stdout
        names = {line.split("/", 1)[0] for line in out.splitlines() if line}
    except (OSError, subprocess.CalledProcessError):
        names = set()
    return names | {p.name for p in root.iterdir()}


def _path_tokens(line: str) -> list[str]:
    return re.findall(r"(?<![\w$(.-])([A-Za-z_.][\w.-]*)(?=/|\s|$|['\"])", line)


def adapt_makefile(text: str, missing: set[str], present: set[str] = set(FOLDERS)) -> str:
    """The Makefile for a copy that lacks the top-level names in ``missing`` and holds those in
    ``present`` (see the module doc for the rules)."""
    missing = {m for m in missing if m not in {"", "."}}
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    rule_re = re.compile(r"^([A-Za-z0-9_.$()/%-]+(?:\s+[A-Za-z0-9_.$()/%-]+)*)\s*:(?!=)")
    while i < len(lines):
        line = lines[i]
        match = rule_re.match(line)
        if not match or line.startswith("\t") or line.startswith(".PHONY"):
            out.append(line)
            i += 1
            continue
        header, recipe = line, []
        i += 1
        while i < len(lines) and (lines[i].startswith("\t") or (recipe and lines[i - 1].endswith("\\"))):
            recipe.append(lines[i])
            i += 1
        new_recipe, needs = [], set()
        for cmd in recipe:
            tokens = _path_tokens(cmd)
            if re.match(r"^\t@?echo\b", cmd):  # help text: only "folder/" counts as naming a folder
                if any(re.search(rf"(?<![\w.-]){re.escape(name)}/", cmd) for name in missing):
                    continue  # it tells of something the copy does not have
                new_recipe.append(cmd)
                continue
            names = [t.split("/", 1)[0] for t in tokens]
            absent = sorted({n for n in names if n in missing})
            if not absent:
                new_recipe.append(cmd)
            elif "pytest" in cmd and any(n in present for n in names):
                for name in absent:
                    cmd = re.sub(rf"\s+{re.escape(name)}/?(?=\s|$)", "", cmd)
                new_recipe.append(cmd)
            else:
                needs.update(absent)
        targets = match.group(1).split()
        if needs:  # explain instead; and drop the prerequisites (no need to install for a message)
            header = " ".join(targets) + ":"
            folders = ", ".join(f"{n}/" for n in sorted(needs))
            new_recipe = [f'\t@echo "make {targets[0]}: not part of the student copy (it needs {folders}, '
                          f'which your instructor keeps)."']
        out.append(header)
        out.extend(new_recipe)
    return "\n".join(out) + "\n"


def _clear_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            cell["outputs"], cell["execution_count"] = [], None
            changed = True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


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


def build(root: Path = ROOT, out: Path | None = None) -> Path:
    """Build the student copy of the course at ``root`` into ``out`` (default ``root/dist/student``),
    replacing what was there. Returns ``out``."""
    root = Path(root).resolve()
    out = Path(out).resolve() if out else root / "dist" / "student"
    lacking = [name for name in REQUIRED if not (root / name).exists()]
    if lacking:
        raise FileNotFoundError(f"{root} lacks {', '.join(lacking)}: run this from the course repository "
                                "(or pass its path as --root).")
    if out == root or out in root.parents or out.parent == root:
        raise ValueError(f"--out {out} would overwrite the repository; use a folder under dist/.")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for folder in FOLDERS:
        shutil.copytree(root / folder, out / folder, ignore=SKIP)
    for name in FILES:
        if (root / name).is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, out / name)
    for nb in out.rglob("*.ipynb"):
        _clear_outputs(nb)
    missing = _top_level_names(root) - {p.name for p in out.iterdir()}
    present = {p.name for p in out.iterdir()}
    makefile = adapt_makefile((root / "Makefile").read_text(encoding="utf-8"), missing, present)
    (out / "Makefile").write_text(makefile, encoding="utf-8")
    readme = out / "README.md"
    if readme.exists():
        readme.write_text(STUDENT_NOTE + readme.read_text(encoding="utf-8"), encoding="utf-8")
    hits = find_markers(out)
    if hits:
        shutil.rmtree(out)
        raise RuntimeError("solution markers found, student copy removed: " + ", ".join(hits)
                           + "\nRegenerate exercises/ from solutions/ (`make exercises`) and build again.")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the course repository (default: this one)")
    parser.add_argument("--out", type=Path, default=None, help="where to build (default: ROOT/dist/student)")
    args = parser.parse_args(argv)
    out = build(args.root, args.out)
    count = sum(1 for _ in out.rglob("*.ipynb"))
    print(f"student copy: {out} ({count} notebooks, no solutions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
