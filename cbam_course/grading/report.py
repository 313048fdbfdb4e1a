"""The grader's outputs: ``grades.csv`` (one row per check), ``grades.md`` (learners by notebook)
and ``feedback/<learner>.md`` (every verdict and hint, to hand back). Written atomically, so a file
a learner's notebook planted at the same path is replaced, never merged."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

from ..train.files import atomic_write

COLUMNS = ("learner", "notebook", "check", "status", "detail")
VERDICT = {"pass": "✔ correct", "fail": "✘ not right yet", "not_done": "… not done yet",
           "error": "⚠ error", "timeout": "⏱ stopped by the time limit"}


def csv_text(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.learner, r.notebook, r.check, r.status, r.detail])
    return buffer.getvalue()


def _column(row) -> str:
    return row.exercise or row.notebook


def _cell(rows) -> str:
    """``passed/checks`` for one notebook, with the reason when it could not be graded normally."""
    passed = sum(r.status == "pass" for r in rows)
    text = f"{passed}/{len(rows)}" if rows[0].check else "not an exercise"
    for status in ("timeout", "error"):
        if rows[0].check and all(r.status == status for r in rows):
            text += f" ({status})"
    return text


def table_text(rows, learners: list[str], summary: dict) -> str:
    columns = sorted({_column(r) for r in rows if r.exercise}) + sorted({_column(r) for r in rows if not r.exercise})
    lines = ["# Gradebook", "",
             f"Checks passed per notebook ({summary['learners']} learners, {summary['notebooks']} notebooks, "
             f"graded {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}). Every check's verdict and hint is in "
             "`grades.csv` and in each learner's `feedback/` file; `–` means not handed in.", "",
             "| learner | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for learner in learners:
        cells = []
        for column in columns:
            mine = [r for r in rows if r.learner == learner and _column(r) == column]
            by_file: dict[str, list] = {}
            for r in mine:
                by_file.setdefault(r.notebook, []).append(r)
            cells.append(", ".join(_cell(v) for v in by_file.values()) if by_file else "–")
        lines.append(f"| {_escape(learner)} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{summary[s]} {s.replace('_', ' ')}" for s in ("pass", "fail", "not_done", "error", "timeout"))
    lines += ["", f"Checks: {counts}.", ""]
    if summary.get("sandbox"):
        lines += [f"Sandbox: {summary['sandbox']}.", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def feedback_text(learner: str, rows) -> str:
    lines = [f"# Feedback for {learner}", "",
             "Each notebook you handed in ran from top to bottom in a fresh kernel (quick mode); then the "
             "course's checkers tested what your code computes. A hint names the likely mistake.", ""]
    if not rows:
        lines += ["No exercise notebook was handed in.", ""]
    by_file: dict[str, list] = {}
    for r in rows:
        by_file.setdefault(r.notebook, []).append(r)
    for notebook, mine in by_file.items():
        passed = sum(r.status == "pass" for r in mine)
        head = f"{passed} of {len(mine)} checks passed" if mine[0].check else "not graded"
        lines += [f"## {notebook}: {head}", ""]
        for r in mine:
            name = f"`{r.check}`: " if r.check else ""
            message = (r.message or r.detail).strip()
            if "\n" in message:
                body = "\n".join("    " + line for line in message.splitlines())
                lines += [f"- {name}{VERDICT[r.status]}", "", body, ""]
            else:
                lines += [f"- {name}{VERDICT[r.status]}. {message}"]
        lines.append("")
    return "\n".join(lines)


def feedback_name(learner: str) -> str:
    """A file name for ``learner``: their folder's name, with anything odd made an underscore."""
    return (re.sub(r"[^\w.@+-]+", "_", learner).strip("._") or "learner") + ".md"


def write_all(rows, learners: list[str], out: Path, summary: dict) -> list[Path]:
    """grades.csv at ``out``, grades.md beside it, feedback/<learner>.md: the paths written."""
    out = Path(out)
    table = out.with_name(out.stem + ".md") if out.suffix.lower() != ".md" else out.with_name(out.stem + "-table.md")
    atomic_write(out, csv_text(rows))
    atomic_write(table, table_text(rows, learners, summary))
    folder = out.parent / "feedback"
    for learner in learners:
        atomic_write(folder / feedback_name(learner), feedback_text(learner, [r for r in rows if r.learner == learner]))
    return [out, table, folder]
