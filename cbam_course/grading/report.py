"""The grader's outputs: ``grades.csv`` (one row per check), ``grades.md`` (learners by notebook)
and ``feedback/<learner>.md`` (every verdict and hint, to hand back). Written atomically, so a file
a learner's notebook planted at the same path is replaced, never merged.

Languages. ``grades.csv`` and ``grades.md`` are the instructor's: their headers and table are in
English, and the detail column holds each hint as it was judged, in the language of its notebook.
``feedback/<learner>.md`` is the learner's, in the language of that learner's notebooks: the
language most of the notebooks they handed in are written in (each notebook counted once, one that
could not be read not at all); on a tie, or when none could be read or none was handed in, the
grader's own language (``$CBAM_COURSE_LANG``, English unless it says zh)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from pathlib import Path

from ..i18n import N_, language, speaking, tr
from ..train.files import atomic_write

COLUMNS = ("learner", "notebook", "check", "status", "detail")
VERDICT = {"pass": N_("✔ correct"), "fail": N_("✘ not right yet"), "not_done": N_("… not done yet"),
           "error": N_("⚠ error"), "timeout": N_("⏱ stopped by the time limit")}  # tr() where shown


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


def feedback_language(rows) -> str:
    """The language of ``rows``' learner's feedback: that of most of their notebooks (module docstring)."""
    counts = Counter(lang for lang in {r.notebook: r.language for r in rows}.values() if lang).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return language()
    return counts[0][0]


def feedback_text(learner: str, rows) -> str:
    """The learner's feedback, in the current language (:func:`write_all` chooses it)."""
    lines = ["# " + tr("Feedback for {learner}", learner=learner), "",
             tr("Each notebook you handed in ran from top to bottom in a fresh kernel (quick mode); then the "
                "course's checkers tested what your code computes. A hint names the likely mistake."), ""]
    if not rows:
        lines += [tr("No exercise notebook was handed in."), ""]
    by_file: dict[str, list] = {}
    for r in rows:
        by_file.setdefault(r.notebook, []).append(r)
    for notebook, mine in by_file.items():
        passed = sum(r.status == "pass" for r in mine)
        head = tr("{passed} of {total} checks passed", passed=passed, total=len(mine)) if mine[0].check else tr("not graded")
        lines += [f"## {notebook}: {head}", ""]
        for r in mine:
            name = f"`{r.check}`: " if r.check else ""
            message = (r.message or r.detail).strip()
            if "\n" in message:
                body = "\n".join("    " + line for line in message.splitlines())
                lines += [f"- {name}{tr(VERDICT[r.status])}", "", body, ""]
            else:
                lines += ["- " + name + tr("{verdict}. {message}", verdict=tr(VERDICT[r.status]), message=message)]
        lines.append("")
    return "\n".join(lines)


def feedback_name(learner: str) -> str:
    """A file name for ``learner``: their folder's name, with anything odd made an underscore."""
    return (re.sub(r"[^\w.@+-]+", "_", learner).strip("._") or "learner") + ".md"


def write_all(rows, learners: list[str], out: Path, summary: dict) -> list[Path]:
    """grades.csv at ``out``, grades.md beside it, feedback/<learner>.md (each in its learner's
    language, :func:`feedback_language`): the paths written."""
    out = Path(out)
    table = out.with_name(out.stem + ".md") if out.suffix.lower() != ".md" else out.with_name(out.stem + "-table.md")
    atomic_write(out, csv_text(rows))
    atomic_write(table, table_text(rows, learners, summary))
    folder = out.parent / "feedback"
    for learner in learners:
        mine = [r for r in rows if r.learner == learner]
        with speaking(feedback_language(mine)):
            atomic_write(folder / feedback_name(learner), feedback_text(learner, mine))
    return [out, table, folder]
