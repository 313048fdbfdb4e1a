"""Time every notebook top to bottom in one mode and write the table in docs/runtimes.md.

    python tools/measure_runtimes.py --mode quick                  # make runtimes MODE=quick
    python tools/measure_runtimes.py --mode laptop --folders notebooks --only 05 06 --data /path/to/cifar10
    python tools/measure_runtimes.py --mode laptop --folders notebooks --only 05 06 --data DIR --store runs/
    python tools/measure_runtimes.py --mode quick --folders notebooks --out /tmp/runtimes.md
    python tools/measure_runtimes.py --estimate                    # this machine, in under a minute
    python tools/measure_runtimes.py --render-only                 # rewrite the tables, measure nothing

Each notebook runs with a fresh kernel in its own folder (see ``cbam_course/grading/run.py``); the time is the
wall time from kernel start to the last cell, and the memory is the kernel's peak resident set
(``ru_maxrss``, its child processes included when larger). A run records the machine (``lscpu``'s
model name, the cores this process may use, the GPU if any), the date and the exact command.

docs/runtimes.md keeps every mode's measurements: a run replaces the numbers of the notebooks it
measured in its mode and leaves the rest as they were; a cell nobody measured says "not measured".
The measurements also sit, machine-readable, in a comment at the end of the file.

Lessons 05 and 06 take their trained runs from the run store (``cbam_course/train/store.py``).
Without ``--store`` each measurement gets an empty store of its own (a temporary folder), so the
times are those of a first run that trains everything. With ``--store DIR`` (a store made by
``python -m cbam_course prepare``) the times are those of a class with a prepared store; they go in
their own column ("laptop+store"), and a notebook that still had to train a run counts as failed.

``--estimate`` measures nothing into the file. It times a calibration here (lessons 01 and 02 in
quick mode, a fresh kernel each, as the table was measured), divides by the same two notebooks'
recorded times, and prints the table scaled by that ratio, marked as an estimate. Laptop-mode
trainings stop at the profile's time budget, so that part of lessons 05 and 06 is not scaled.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cbam_course.grading.run import MODES, run_notebook  # noqa: E402
from cbam_course.fast.cpu import machine_line  # noqa: E402
from cbam_course.runtime import DATA_ENV, RUNS_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "exercises", "solutions")
DATA_RE = re.compile(r"<!-- runtimes-data\n(.*?)\n-->", re.S)
# --estimate: the lessons it times here (light, no training) and compares with their recorded quick times.
CALIBRATION = ("notebooks/01_concepts.ipynb", "notebooks/02_channel_attention.ipynb")
# Trainings that stop at the laptop profile's time budget, per lesson (name prefix), with a run store
# that holds none of them (what the lessons' first screens, plan_lesson, count): lesson 05 trains two
# networks, lesson 06 five per seed, and one seed outside quick mode.
BUDGETED_TRAININGS = {"05": 2, "06": 5}
ESTIMATE_HINT = "`python tools/measure_runtimes.py --estimate` (under a minute)"


def load(path: Path) -> dict:
    """The measurements already in ``path``: {mode: {"runs": {notebook: {...}}}}."""
    if not path.exists():
        return {}
    found = DATA_RE.search(path.read_text(encoding="utf-8"))
    return json.loads(found.group(1)) if found else {}


def _cell(run: dict | None) -> tuple[str, str]:
    if run is None:
        return "not measured", "–"
    if run.get("error"):
        return f"failed after {run['seconds']:.0f} s", ""
    memory = f"{run['peak_mib']:.0f}" if run.get("peak_mib") is not None else ""
    return f"{run['seconds']:.1f}", memory


def columns(data: dict) -> list[str]:
    """The modes, each followed by its "+store" column (times with a prepared run store) if measured."""
    return [c for m in MODES for c in (m, f"{m}+store") if c == m or c in data]


def table(data: dict) -> list[str]:
    """The run-time table (Markdown lines): one row per notebook, seconds and memory per mode."""
    notebooks = sorted({nb for mode in data.values() for nb in mode.get("runs", {})},
                       key=lambda n: (FOLDERS.index(n.split("/")[0]) if n.split("/")[0] in FOLDERS else 9, n))
    cols = columns(data)
    lines = ["| notebook | " + " | ".join(f"{m} (s) | {m} peak MiB" for m in cols) + " |",
             "|---|" + "---:|---:|" * len(cols)]
    for nb in notebooks:
        cells = []
        for mode in cols:
            cells += _cell(data.get(mode, {}).get("runs", {}).get(nb))
        lines.append(f"| `{nb}` | " + " | ".join(cells) + " |")
    return lines


def machines(data: dict) -> list[str]:
    """One line per mode: the machines (and dates) its numbers were measured on."""
    lines = []
    for mode in columns(data):
        runs = data.get(mode, {}).get("runs", {}).values()
        where: dict[str, set[str]] = {}
        for run in runs:
            where.setdefault(run["machine"], set()).add(run["date"].split()[0])
        text = "; ".join(f"{m} ({', '.join(sorted(d))})" for m, d in sorted(where.items())) or "not measured"
        lines.append(f"- {mode}: {text}")
    return lines


def measured_on(data: dict) -> list[str]:
    """The lines under every copy of the table: where it was measured, and how to estimate yours."""
    return ["Measured on:", "", *machines(data), "",
            "On another machine, " + ESTIMATE_HINT + " times two light lessons there and prints this "
            "table scaled to that machine, as an estimate."]


def update_guide(guide: Path, data: dict, source: str = "docs/runtimes.md") -> bool:
    """Put the table between ``<!-- runtimes:begin -->`` and ``<!-- runtimes:end -->`` in ``guide``
    (the instructors' guide), so the guide shows the script's numbers; False if it has no markers."""
    if not guide.exists():
        return False
    text = guide.read_text(encoding="utf-8")
    block = re.compile(r"(<!-- runtimes:begin -->\n).*?(<!-- runtimes:end -->)", re.S)
    if not block.search(text):
        return False
    body = "\n".join(table(data) + ["", *measured_on(data), "",
                                     f"Generated by `tools/measure_runtimes.py`; machines, dates and commands "
                                     f"are in [{Path(source).name}]({Path(source).name})."]) + "\n"
    guide.write_text(block.sub(lambda m: m.group(1) + body + m.group(2), text), encoding="utf-8")
    return True


def render(data: dict) -> str:
    """docs/runtimes.md from the measurements."""
    lines = [
        "# Notebook run times",
        "",
        "Generated by `tools/measure_runtimes.py` (`make runtimes MODE=quick|laptop|full`); do not edit by hand.",
        "Seconds are wall time for a fresh kernel running the notebook top to bottom (kernel start",
        "included); memory is the kernel's peak resident set. \"not measured\" means nobody has run that",
        "mode for that notebook yet: no number is guessed. A busy machine (load average above its core",
        "count, listed below) makes the times longer than a learner's. A \"+store\" column times lessons",
        "05 and 06 with a prepared run store (`python -m cbam_course prepare`): they load their trained",
        "runs instead of training them; the other columns start from an empty store.",
        "",
        *table(data),
        "",
        *measured_on(data),
    ]
    lines += ["", "## How each mode was measured", ""]
    for mode in columns(data):
        runs = data.get(mode, {}).get("runs", {})
        if not runs:
            lines.append(f"- **{mode}**: not measured yet.")
            continue
        sessions = {}
        for nb, run in runs.items():
            sessions.setdefault((run["machine"], run["date"], run["command"], run.get("data") or ""), []).append(nb)
        for (where, when, command, data_dir), nbs in sorted(sessions.items(), key=lambda s: s[0][1]):
            total = sum(runs[n]["seconds"] for n in nbs)
            count = f"{len(nbs)} notebook" + ("s" if len(nbs) > 1 else "")
            loads = [runs[n]["load"] for n in nbs if runs[n].get("load") is not None]
            busy = f"; load average {min(loads):.1f}-{max(loads):.1f} before each notebook" if loads else ""
            note = next((runs[n]["note"] for n in nbs if runs[n].get("note")), "")
            lines.append(f"- **{mode}**, {count}, {total:.0f} s in all: {where}; {when}; "
                         f"`{command}`" + (f"; data: `{data_dir}`" if data_dir else "") + busy
                         + (f". {note}" if note else ""))
        failed = [f"`{n}`: {r['error']}" for n, r in runs.items() if r.get("error")]
        if failed:
            lines.append(f"  - failed in {mode} mode: " + "; ".join(failed))
    lines += ["", "<!-- runtimes-data", json.dumps(data, indent=1, sort_keys=True), "-->", ""]
    return "\n".join(lines)


def select(root: Path, folders: list[str], only: list[str]) -> list[Path]:
    """The notebooks to measure: those in ``folders`` whose name starts with one of ``only``."""
    found = sorted(p for f in folders for p in (root / f).glob("*.ipynb"))
    if only:
        found = [p for p in found if any(p.name.startswith(o) for o in only)]
    if not found:
        raise FileNotFoundError(f"no notebooks to measure in {', '.join(folders)} under {root}"
                                + (f" starting with {' or '.join(only)}" if only else ""))
    return found


def measure(paths: list[Path], mode: str, root: Path, command: str, timeout: int | None = -1,
            done: Callable[[str, dict], None] | None = None, store: Path | None = None, note: str = "") -> dict:
    """Run each notebook in ``mode``; return {notebook: record} for the data file. ``done`` is
    called after each notebook (so a long run that is stopped keeps what it measured). With
    ``store`` the lessons read that run store, and a notebook that trained a run counts as failed;
    without, each notebook gets an empty store of its own."""
    from cbam_course.train.store import TRAINING_NOTE

    where, when = machine_line(), dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    records = {}
    for path in paths:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
        print(f"{rel} ({mode})...", flush=True)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        with tempfile.TemporaryDirectory(prefix="cbam-runs-") as empty:
            run = run_notebook(path, mode, timeout, measure_memory=True,
                               env={RUNS_ENV: str(store.resolve() if store else empty)})
        if store and run.error is None:
            text = "".join(o.get("text", "") for c in run.notebook.cells for o in c.get("outputs", []))
            trained = text.count(TRAINING_NOTE)
            if trained:
                run = dataclasses.replace(run, error=f"trained {trained} run(s): the store {store} lacks them "
                                                     f"(python -m cbam_course prepare fills it)")
        records[rel] = {"seconds": round(run.seconds, 1),
                        "peak_mib": None if run.peak_mib is None else round(run.peak_mib),
                        "error": run.error, "machine": where, "date": when, "command": command,
                        "data": os.environ.get(DATA_ENV) if mode != "quick" else None,
                        "load": None if load_before is None else round(load_before, 1),
                        "store": str(store) if store else None, "note": note}
        print(f"  {run.seconds:.1f} s" + (f", {run.peak_mib:.0f} MiB" if run.peak_mib else "")
              + (f"  FAILED: {run.error}" if run.error else ""), flush=True)
        if done:
            done(rel, records[rel])
    return records


def laptop_budget() -> float:
    """Seconds one laptop-mode training may take (the profile's time budget, evaluation included)."""
    from cbam_course.train.recipes import PROFILES
    return float(PROFILES["laptop"].time_budget or 0)


def scale(seconds: float, notebook: str, mode: str, ratio: float, budget: float) -> float:
    """``seconds`` measured there, as estimated here: times ``ratio``, except that laptop-mode
    trainings end at their time budget whatever the CPU (a slower one trains fewer epochs)."""
    trainings = BUDGETED_TRAININGS.get(Path(notebook).name[:2], 0) if mode == "laptop" else 0
    fixed = trainings * budget if trainings * budget <= seconds else 0.0
    return fixed + (seconds - fixed) * ratio


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def estimate_table(data: dict, ratio: float, memory_ratio: float, budget: float,
                   notebooks: list[str] | None = None) -> list[str]:
    """The table for this machine (Markdown lines): quick and laptop, seconds and peak memory scaled."""
    modes = ("quick", "laptop")
    notebooks = notebooks if notebooks is not None else sorted(
        {nb for m in modes for nb in data.get(m, {}).get("runs", {})},
        key=lambda n: (FOLDERS.index(n.split("/")[0]) if n.split("/")[0] in FOLDERS else 9, n))
    lines = ["| notebook | " + " | ".join(f"{m} (s), estimated | {m} peak MiB, estimated" for m in modes) + " |",
             "|---|" + "---:|---:|" * len(modes)]
    totals = {m: [0.0, 0.0] for m in modes}
    for nb in notebooks:
        cells = []
        for mode in modes:
            run = data.get(mode, {}).get("runs", {}).get(nb)
            if run is None or run.get("error"):
                cells += ["not measured" if run is None else "failed there", "–"]
                continue
            seconds = scale(run["seconds"], nb, mode, ratio, budget)
            totals[mode][0] += run["seconds"]
            totals[mode][1] += seconds
            memory = "" if run.get("peak_mib") is None else f"{run['peak_mib'] * memory_ratio:.0f}"
            cells += [f"{seconds:.0f}", memory]
        lines.append(f"| `{nb}` | " + " | ".join(cells) + " |")
    lines += ["", "In all: " + "; ".join(f"{m}, about {_duration(here)} here ({_duration(there)} measured there)"
                                       for m, (there, here) in totals.items() if there)]
    return lines


def estimate(root: Path, table_path: Path, folders: list[str], only: list[str], runner=run_notebook) -> int:
    """Time the calibration lessons here and print the recorded table scaled to this machine."""
    data = load(table_path)
    quick = data.get("quick", {}).get("runs", {})
    reference = {nb: quick.get(nb) for nb in CALIBRATION}
    missing = [nb for nb, run in reference.items() if not run or run.get("error") or not (root / nb).exists()]
    if missing:
        print(f"error: cannot estimate: {', '.join(missing)} has no quick-mode time in {table_path} "
              f"(or is not in {root}); run `make runtimes MODE=quick` on some machine first.", file=sys.stderr)
        return 1
    print(f"Calibrating: {' and '.join(CALIBRATION)} in quick mode, a fresh kernel each "
          f"(as the table was measured)...", flush=True)
    here_s = here_mib = there_s = there_mib = 0.0
    memory_known = True
    for nb in CALIBRATION:
        run = runner(root / nb, "quick", measure_memory=True)
        if run.error:
            print(f"error: the calibration failed in {nb}: {run.error}", file=sys.stderr)
            return 1
        print(f"  {nb}: {run.seconds:.1f} s here, {reference[nb]['seconds']:.1f} s there", flush=True)
        here_s += run.seconds
        there_s += reference[nb]["seconds"]
        if run.peak_mib is None or reference[nb].get("peak_mib") is None:
            memory_known = False
        else:
            here_mib += run.peak_mib
            there_mib += reference[nb]["peak_mib"]
    ratio = here_s / there_s
    memory_ratio = here_mib / there_mib if memory_known and there_mib else 1.0
    there = sorted({reference[nb]["machine"] for nb in CALIBRATION})
    runs = {m: {"runs": {nb: r for nb, r in d.get("runs", {}).items() if (root / nb).exists()}}
            for m, d in data.items()}
    rows = sorted({nb for m in ("quick", "laptop") for nb in runs.get(m, {}).get("runs", {})},
                  key=lambda n: (FOLDERS.index(n.split("/")[0]) if n.split("/")[0] in FOLDERS else 9, n))
    rows = [nb for nb in rows if nb.split("/")[0] in folders
            and (not only or any(Path(nb).name.startswith(o) for o in only))]
    budget = laptop_budget()
    print("\n".join([
        "",
        f"ESTIMATE for this machine ({machine_line()}): the table of {table_path.name} scaled by a calibration, "
        f"not a measurement.",
        f"Calibration: {' and '.join(CALIBRATION)} in quick mode took {here_s:.1f} s here against "
        f"{there_s:.1f} s on {' / '.join(there)}: times x {ratio:.2f}"
        + (f"; peak memory {here_mib:.0f} MiB against {there_mib:.0f} MiB: memory x {memory_ratio:.2f}."
           if memory_known else "; memory not scaled (not measured)."),
        f"Laptop-mode lessons 05 and 06 train until a time budget ({budget:.0f} s per training: "
        f"{BUDGETED_TRAININGS['05']} trainings in lesson 05, {BUDGETED_TRAININGS['06']} in lesson 06), "
        f"which no CPU shortens or lengthens: only the rest of those lessons is scaled, and a slower CPU "
        f"trains fewer epochs in the budget (a lower accuracy).",
        "Full mode needs a GPU: a CPU calibration cannot estimate it.",
        "",
        *estimate_table(runs, ratio, memory_ratio, budget, rows),
        "",
        "The machines the table was measured on:",
        *machines(data),
        "The first run after a reboot reads PyTorch from disk and reads slower: if in doubt, run it again.",
    ]))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, default="quick", help="quick (default), laptop or full")
    parser.add_argument("--folders", nargs="+", default=list(FOLDERS), help="folders to measure (default: all three)")
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes, e.g. 05 06")
    parser.add_argument("--data", type=Path, help=f"CIFAR-10 folder for laptop/full (sets ${DATA_ENV})")
    parser.add_argument("--store", type=Path, default=None,
                        help="a prepared run store for lessons 05 and 06 (times go in the mode's +store column)")
    parser.add_argument("--note", default="", help="one sentence on how the store was made, kept with the times")
    parser.add_argument("--timeout", type=int, default=-1, help="seconds per cell (default: the mode's limit)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the course repository")
    parser.add_argument("--out", type=Path, default=None, help="the table to update (default: docs/runtimes.md)")
    parser.add_argument("--guide", type=Path, default=None,
                        help="guide whose runtimes block to refresh (default: docs/instructors.md when --out is default)")
    parser.add_argument("--estimate", action="store_true",
                        help="estimate this machine's times: time lessons 01-02 in quick mode here and print "
                             "the table scaled by them (writes nothing; under a minute)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the table (and the guide's block) from the recorded data; measure nothing")
    args = parser.parse_args(argv)
    out = args.out or args.root / "docs" / "runtimes.md"
    guide = args.guide if args.guide else (args.root / "docs" / "instructors.md" if args.out is None else None)
    if args.estimate:
        return estimate(args.root, out, args.folders, args.only)
    if args.render_only:
        data = load(out)
        out.write_text(render(data), encoding="utf-8")
        print(f"wrote {out}" + (f" and the table in {guide}" if guide and update_guide(guide, data) else ""))
        return 0
    if args.data:
        if not args.data.is_dir():
            parser.error(f"--data {args.data} is not a folder: give the folder that holds CIFAR-10.")
        os.environ[DATA_ENV] = str(args.data.resolve())
    command = "python tools/measure_runtimes.py " + " ".join(shlex.quote(a) for a in argv)
    paths = select(args.root, args.folders, args.only)
    data = load(out)
    for mode in data.values():  # forget notebooks that were renamed or removed since
        mode["runs"] = {nb: r for nb, r in mode.get("runs", {}).items() if (args.root / nb).exists()}
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(notebook: str, record: dict) -> None:
        data.setdefault(args.mode + ("+store" if args.store else ""), {"runs": {}})["runs"][notebook] = record
        out.write_text(render(data), encoding="utf-8")
        if guide:
            update_guide(guide, data)

    if args.store and not args.store.is_dir():
        parser.error(f"--store {args.store} is not a folder: make one with `python -m cbam_course prepare`.")
    records = measure(paths, args.mode, args.root, command.strip(), args.timeout, done=save, store=args.store,
                      note=args.note)
    print(f"wrote {out}" + (f" and the table in {guide}" if guide and guide.exists() else ""))
    return 1 if any(r["error"] for r in records.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
