"""``python -m cbam_course grade DIR``: grade a class's exercise notebooks with the course's checkers.

``DIR`` holds one folder per learner, named after the learner, with that learner's exercise notebooks
inside (``DIR/<learner>/02_channel_attention.ipynb``, as nbgrader's ``submitted/`` does); a learner
may hand in any subset of the six. What the grader does with each notebook:

1. reads a copy and finds its exercise: by its file name (which must contain the exercise's name,
   ``02_channel_attention``), or else by the nbgrader cell ids the exercise notebooks carry; a
   notebook whose cells belong to another exercise than its name says is an error;
2. runs the copy top to bottom in a fresh kernel, in a temporary folder of its own, in quick mode,
   every cell even after one raises, within a wall-clock limit (``--timeout``) and on Linux a memory
   limit (``--memory``) (:func:`cbam_course.grading.run.execute`), the kernel sandboxed
   (:mod:`cbam_course.grading.sandbox`: its own session, and where Linux allows it its own PID,
   network and mount namespaces, read-only outside its folder);
3. then judges every check its exercise has (the ``check_*(Name)`` calls of its solution notebook
   are the list), the probe/judge way (:mod:`cbam_course.checks`): the probe, sent into the
   learner's kernel, builds the learner's ``Name`` and runs it on inputs the judge chose; the judge,
   in this process, which never runs learner code, compares what came back with the references
   and writes the verdict. A notebook that patches torch or the checkers, or prints or writes
   verdicts, changes only what its own code seems to return.

A verdict is ``pass``, ``fail`` (the checker's hint), ``not_done`` (the answer still raises
``NotImplementedError``), ``error`` (the notebook could not be read or run, the definition is
missing, or the learner's code raised) or ``timeout``. Every notebook handed in gets one row per
check of its exercise, whatever happened to it.

Nothing graded is lost: each notebook's rows are written (atomically) to ``<gradebook>.rows/`` as
soon as it ends, and a second run of the same command grades only the notebooks that have none
(``--fresh`` grades them all again). Out come ``grades.csv`` (``learner,notebook,check,status,detail``),
``grades.md`` beside it (learners by notebook, checks passed) and ``feedback/<learner>.md``, rebuilt
from the rows at the end of every run. The submissions are only read.

Each notebook is graded in its own language: a notebook of the Chinese edition says so in its
metadata (``metadata.cbam_course.language == "zh"``, :func:`notebook_language`), and its checks are
judged, and its rows' details written, in Chinese (:func:`cbam_course.i18n.speaking`); each learner's
feedback is in the language of that learner's notebooks (:mod:`cbam_course.grading.report`).
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import dataclasses
import hashlib
import inspect
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from nbclient.exceptions import DeadKernelError

from ..checks import verdict
from ..checks.judge import Target, traceback_pointers
from ..i18n import LANGUAGES, language, speaking, tr
from ..runtime import PROFILE_ENV, QUICK_ENV, RUNS_ENV
from ..train.files import atomic_write
from . import report, sandbox
from .run import KERNEL_STOPPED, execute, kernel_env

STATUSES = ("pass", "fail", "not_done", "error", "timeout")
DEFAULT_TIMEOUT = 300
DEFAULT_MEMORY_MIB = 4096
MAX_DEFAULT_JOBS = 8
GRADER_VERSION = 3  # part of each notebook's saved rows: a new grader grades every notebook again
PACKAGE = Path(__file__).resolve().parents[1]
PROBE = PACKAGE / "checks" / "probe.py"  # sent into each learner's kernel as source
_CHECK_CALL = re.compile(r"^check_\w+$")
# A checker's pointer to the traceback a lesson shows; the grader shows none (hint() drops it).
class UsageError(Exception):
    """Something the instructor must fix before anything can be graded; the message says what."""


# ------------------------------------------------------------------------------------------------
# The exercises: names and checks, read from solutions/
# ------------------------------------------------------------------------------------------------

@dataclass
class Exercise:
    """One exercise: its name (``02_channel_attention``) and its checks as (checker, name of the
    learner's definition) in the solution's order."""
    stem: str
    checks: list[tuple[str, str]]


def _code(source: str) -> str:
    """A cell's source made parseable: IPython magics and shell escapes become ``pass``."""
    return re.sub(r"^(\s*)[%!].*$", r"\1pass", source, flags=re.M)


def read_exercise(path: Path) -> Exercise:
    """The checks a solution notebook calls (``check_x(Name)``, also inside ``if check_x(X):``)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    checks: list[tuple[str, str]] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_code(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and _CHECK_CALL.match(node.func.id)
                    and node.args and isinstance(node.args[0], ast.Name)):
                pair = (node.func.id, node.args[0].id)
                if pair not in checks:
                    checks.append(pair)
    return Exercise(path.stem, checks)


def load_exercises(solutions: Path) -> dict[str, Exercise]:
    """Every solution notebook in ``solutions`` that calls a checker, by name."""
    found = {p.stem: read_exercise(p) for p in sorted(Path(solutions).glob("*.ipynb"))}
    return {stem: ex for stem, ex in found.items() if ex.checks}


def default_solutions() -> Path:
    """``solutions/`` of the repository the package sits in (an editable install: ``pip install -e .``)."""
    return PACKAGE.parent / "solutions"


# ------------------------------------------------------------------------------------------------
# What was handed in
# ------------------------------------------------------------------------------------------------

@dataclass
class Submission:
    learner: str
    path: Path
    name: str  # the notebook's path inside the learner's folder: the gradebook's "notebook"


def find_submissions(root: Path) -> tuple[list[str], list[Submission], list[Path]]:
    """Learners (the folders of ``root``), their notebooks, and notebooks lying outside any folder."""
    learners = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    subs = []
    for learner in learners:
        folder = root / learner
        for path in sorted(folder.rglob("*.ipynb")):
            rel = path.relative_to(folder)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue  # .ipynb_checkpoints and other hidden copies
            subs.append(Submission(learner, path, rel.as_posix()))
    loose = sorted(p for p in root.glob("*.ipynb") if p.is_file())
    return learners, subs, loose


def identify(name: str, nb, exercises: dict[str, Exercise]) -> tuple[Exercise | None, str | None]:
    """The exercise a notebook is, and the problem if it cannot be graded as that exercise.

    The file name must contain the exercise's name (LMS exports add prefixes and suffixes); the
    nbgrader ``grade_id``s its cells carry (``02_channel_attention-4``) must not say otherwise."""
    stem = Path(name).stem.lower()
    named = max((ex for s, ex in exercises.items() if s.lower() in stem), key=lambda ex: len(ex.stem), default=None)
    ids = {str(c.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")).rsplit("-", 1)[0]
           for c in getattr(nb, "cells", [])} if nb is not None else set()
    ids &= set(exercises)
    if named is not None and ids and named.stem not in ids:
        return named, tr("its cells are exercise {found}, not {named}: the wrong notebook was handed in under "
                         "this name", found=", ".join(sorted(ids)), named=named.stem)
    if named is not None:
        return named, None
    if len(ids) == 1:
        return exercises[ids.pop()], None
    known = ", ".join(f"{s}.ipynb" for s in exercises)
    return None, tr("not one of the course's exercises: the file name must contain one of {known}", known=known)


def notebook_language(nb) -> str:
    """The language a notebook is written in: ``metadata.cbam_course.language`` ("zh" in the
    Chinese edition), else English ("en")."""
    meta = getattr(nb, "metadata", None)
    course = meta.get("cbam_course") if isinstance(meta, dict) else None
    lang = course.get("language") if isinstance(course, dict) else None
    return lang if lang in LANGUAGES else "en"


# ------------------------------------------------------------------------------------------------
# Grading one notebook
# ------------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the gradebook, plus what the feedback file shows in full."""
    learner: str
    notebook: str
    check: str
    status: str
    detail: str
    message: str = ""
    exercise: str = ""
    language: str = "en"  # the notebook's, which detail and message are written in ("": it could not be read)


def one_line(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def hint(message: str) -> str:
    """A checker's message as the gradebook shows it: without the pointer to a traceback it has not
    (in whichever language the checker wrote it)."""
    for pointer in traceback_pointers():
        message = message.replace(pointer, "")
    return message


async def _request(client, code: str, expressions: dict[str, str], timeout: float | None) -> dict:
    """Execute ``code`` silently (no history, no hooks, no output) and return the reply's content."""
    msg_id = client.kc.execute(code, silent=True, store_history=False, user_expressions=expressions,
                               allow_stdin=False, stop_on_error=False)
    if inspect.isawaitable(msg_id):
        msg_id = await msg_id
    reply = await asyncio.wait_for(client.async_wait_for_reply(msg_id), timeout)
    return (reply or {}).get("content", {})


def _remote_probe(client, loop: asyncio.AbstractEventLoop, space: str, deadline: float):
    """``ask(request) -> reply`` through the probe in the learner's kernel: one silent request
    each, the reply read from ``user_expressions`` (a string literal, parsed, never evaluated)."""
    def ask(request: str) -> str:
        left = max(1.0, deadline - time.monotonic())
        future = asyncio.run_coroutine_threadsafe(
            _request(client, "", {"r": f"{space}.serve({request!r})"}, left), loop)
        content = future.result(timeout=left + 5)
        value = content.get("user_expressions", {}).get("r", {})
        if value.get("status") != "ok":
            raise RuntimeError(f"the probe failed in the kernel: {value.get('ename', 'Error')}: {value.get('evalue', '')}"[:300])
        text = ast.literal_eval(value["data"]["text/plain"])
        if not isinstance(text, str):
            raise RuntimeError("the probe's reply is not text")
        return text
    return ask


def _judge(exercise: Exercise, verdicts: dict[str, tuple[str, str]], deadline: float, lang: str):
    """The ``after`` step of :func:`execute`: send the probe into the kernel, then judge every
    check here, in ``lang``, each verdict kept as soon as it is known (a later check that hangs does
    not lose it)."""
    async def after(client) -> None:
        space = f"_cbam_probe_{secrets.token_hex(8)}"
        setup = (f"{space} = __import__('types').ModuleType({space!r})\n"  # a module of its own, for its dataclasses
                 f"__import__('sys').modules[{space!r}] = {space}\n"
                 f"exec(compile({PROBE.read_text(encoding='utf-8')!r}, 'probe.py', 'exec'), {space}.__dict__)\n"
                 f"{space} = {space}.Probe(globals())")
        content = await _request(client, setup, {}, max(1.0, deadline - time.monotonic()))
        if content.get("status") != "ok":
            why = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
            for checker, _ in exercise.checks:
                verdicts[checker] = ("error", tr("the grader could not start its probe in this kernel: {why}", why=why))
            return
        loop = asyncio.get_running_loop()
        ask = _remote_probe(client, loop, space, deadline)

        def judge_all() -> None:
            with speaking(lang):  # this worker thread's own language: the checkers' hints are written in it
                for checker, target in exercise.checks:
                    try:
                        verdicts[checker] = verdict(checker, Target(target, ask))
                    except TimeoutError:
                        verdicts[checker] = ("timeout", tr("the checks ran past the time limit for the whole notebook"))
                    except DeadKernelError:  # the notebook's last cell killed it, and the run noticed only now
                        verdicts[checker] = ("error", tr(KERNEL_STOPPED))
                    except Exception as err:  # noqa: BLE001 - the kernel died, the probe's reply was unusable
                        verdicts[checker] = ("error", tr("the checks could not run: {error}",
                                                         error=f"{type(err).__name__}: {err}")[:400])
                        if time.monotonic() > deadline:
                            break

        await asyncio.to_thread(judge_all)
    return after


def _missing(target: str, nb, cell_errors: list[tuple[int, str]]) -> str:
    """Why ``target`` is not defined after the run, as precisely as the cells tell."""
    pattern = re.compile(rf"^\s*(class|def)\s+{re.escape(target)}\b|^{re.escape(target)}\s*=", re.M)
    defining = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and pattern.search(c.source)]
    errors = dict(cell_errors)
    for index in defining:
        if index in errors:
            return tr("{target} is not defined: its cell (cell {cell}) raised {error}", target=target, cell=index,
                      error=errors[index])
    if not defining:
        return tr("{target} is not defined: the notebook has no cell that defines it (was the exercise's cell "
                  "deleted?)", target=target)
    if cell_errors:
        return tr("{target} is not defined after running the notebook (cell {cell} raised {error})", target=target,
                  cell=cell_errors[0][0], error=cell_errors[0][1])
    return tr("{target} is not defined after running the notebook", target=target)


def grade_notebook(sub: Submission, exercises: dict[str, Exercise], *, timeout: float,
                   memory_mib: int | None, env: dict[str, str]) -> list[Row]:
    """Every check of ``sub``'s exercise, graded: one Row each (one Row with no check when the
    notebook is not an exercise), judged and written in the notebook's language (English when it
    cannot be read). The submission is read once and never written."""
    import nbformat

    data = sub.path.read_bytes()
    nb, damage = None, None
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - any damage: not UTF-8, not JSON, not a notebook
        damage = f"{type(exc).__name__}: {one_line(exc, 200)}"
    lang = notebook_language(nb) if nb is not None else ""
    with speaking(lang or "en"):
        return _grade_notebook(sub, exercises, data, nb, damage, lang, timeout=timeout, memory_mib=memory_mib, env=env)


def _grade_notebook(sub: Submission, exercises: dict[str, Exercise], data: bytes, nb, damage: str | None, lang: str,
                    *, timeout: float, memory_mib: int | None, env: dict[str, str]) -> list[Row]:
    """:func:`grade_notebook` once the notebook is read (``damage``: why it could not be), in its language."""
    def rows(exercise: Exercise | None, status: str, detail: str) -> list[Row]:
        if exercise is None:
            return [Row(sub.learner, sub.name, "", status, one_line(detail), detail, "", lang)]
        return [Row(sub.learner, sub.name, checker, status, one_line(detail), detail, exercise.stem, lang)
                for checker, _ in exercise.checks]

    problem = tr("cannot read the notebook ({error}): ask for a fresh copy", error=damage) if damage else None
    exercise, wrong = identify(sub.name, nb, exercises)
    if problem or wrong:
        return rows(exercise, "error", problem or wrong)

    work = Path(tempfile.mkdtemp(prefix="cbam-grade-"))
    try:
        (work / Path(sub.name).name).write_bytes(data)  # a copy to run in: the kernel works in `work`
        home = work / ".home"  # everything the kernel writes stays in its folder
        private = {"HOME": str(home), "IPYTHONDIR": str(home / "ipython"), "MPLCONFIGDIR": str(home / "mpl"),
                   "XDG_CACHE_HOME": str(home / "cache"), "TMPDIR": str(home / "tmp"), RUNS_ENV: str(home / "runs")}
        for folder in private.values():
            Path(folder).mkdir(parents=True, exist_ok=True)
        verdicts: dict[str, tuple[str, str]] = {}
        done = execute(nb, cwd=work, env={**env, **private}, limit=timeout, cell_timeout=timeout, memory_mib=memory_mib,
                       allow_errors=True, keep_outputs=False, quiet=True, sandboxed=True,
                       after=_judge(exercise, verdicts, time.monotonic() + timeout, lang or "en"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = []
    for checker, target in exercise.checks:
        status, text = verdicts.get(checker, (None, ""))
        if status is None:  # the run ended before this check was made
            status = "timeout" if done.timed_out else "error"
            text = (tr(done.stop[0], **done.stop[1]) if done.stop
                    else done.error or tr("the notebook stopped before the checks ran"))
        elif status == "missing":
            status, text = "error", _missing(target, nb, done.cell_errors)
        elif status in ("fail", "error"):
            text = hint(text)
        out.append(Row(sub.learner, sub.name, checker, status, one_line(text), text, exercise.stem, lang))
    return out


# ------------------------------------------------------------------------------------------------
# What a finished notebook leaves behind: its rows, saved at once
# ------------------------------------------------------------------------------------------------

def rows_folder(out: Path) -> Path:
    """Where each graded notebook's rows are kept: ``grades.rows/`` beside ``grades.csv``."""
    return Path(out).with_name(Path(out).stem + ".rows")


def _rows_file(folder: Path, sub: Submission) -> Path:
    key = hashlib.sha256(f"{sub.learner}\0{sub.name}".encode()).hexdigest()[:24]
    return folder / f"{key}.json"


def _grading_key(sub: Submission, exercises: dict[str, Exercise], timeout: float, memory_mib: int | None) -> str:
    """What the saved rows of ``sub`` depend on: its bytes, the checks, the limits and the grader."""
    h = hashlib.sha256(sub.path.read_bytes())
    h.update(json.dumps([GRADER_VERSION, timeout, memory_mib, sorted((s, e.checks) for s, e in exercises.items())],
                        sort_keys=True).encode())
    return h.hexdigest()


def _saved_rows(path: Path, key: str) -> list[Row] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return [Row(**r) for r in saved["rows"]] if saved.get("key") == key else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------

def default_jobs() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_DEFAULT_JOBS))


def kernel_environment(jobs: int) -> dict[str, str]:
    """Quick mode, no figures drawn, and the cores shared among the kernels that run at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = str(max(1, cores // jobs))
    return kernel_env({QUICK_ENV: "1", PROFILE_ENV: "quick", "MPLBACKEND": "Agg",
                       "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})


def grade(root: Path, out: Path, *, timeout: float = DEFAULT_TIMEOUT, jobs: int | None = None,
          memory_mib: int | None = DEFAULT_MEMORY_MIB, solutions: Path | None = None,
          progress: bool = True, fresh: bool = False) -> dict:
    """Grade every notebook under ``root`` and write the gradebook, its table and the feedback.

    Each notebook's rows are saved (``<out>.rows/``) as soon as it ends; notebooks saved by an
    earlier run of the same grading are not graded again unless ``fresh``. Returns a summary:
    learners, notebooks, a count per status (of checks), seconds, how the kernels were sandboxed,
    and the paths written. Raises UsageError, with what to fix, when there is nothing it can grade."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder: give the folder that holds one folder per learner "
                         f"(DIR/<learner>/02_channel_attention.ipynb).")
    if out.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"--out {out} is inside the submissions folder {root}: write the gradebook "
                         f"elsewhere, so the submissions stay as they were handed in.")
    solutions = Path(solutions) if solutions else default_solutions()
    if not solutions.is_dir():
        raise UsageError(f"cannot find the solution notebooks at {solutions}: they list each exercise's "
                         f"checks. Run the grader from a clone of the course (pip install -e .), or pass "
                         f"--solutions PATH.")
    exercises = load_exercises(solutions)
    if not exercises:
        raise UsageError(f"{solutions} holds no solution notebook that calls a checker: pass --solutions "
                         f"with the course's solutions/ folder.")
    learners, subs, loose = find_submissions(root)
    if not subs:
        hint = (f" ({len(loose)} notebooks lie directly in {root}: put each learner's in a folder named "
                f"after the learner)") if loose else ""
        raise UsageError(f"nothing to grade in {root}: it must hold one folder per learner with that "
                         f"learner's notebooks inside (DIR/<learner>/02_channel_attention.ipynb){hint}.")
    jobs = jobs or default_jobs()
    env = kernel_environment(jobs)
    namespaces, protection = sandbox.status()
    folder = rows_folder(out)
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    keys = {i: _grading_key(s, exercises, timeout, memory_mib) for i, s in enumerate(subs)}
    results: dict[int, list[Row]] = {}
    for i, s in enumerate(subs):
        saved = _saved_rows(_rows_file(folder, s), keys[i])
        if saved is not None:
            results[i] = saved

    from tqdm.auto import tqdm

    start = time.perf_counter()
    todo = [i for i in range(len(subs)) if i not in results]
    bar = tqdm(total=len(subs), initial=len(subs) - len(todo), unit="notebook", desc="grading",
               disable=None if progress else True, file=sys.stderr)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_notebook, subs[i], exercises, timeout=timeout, memory_mib=memory_mib, env=env): i
                   for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:  # noqa: BLE001 - the grader's own failure on one notebook
                s = subs[i]
                ex, _ = identify(s.name, None, exercises)
                checks = [c for c, _ in ex.checks] if ex else [""]
                results[i] = [Row(s.learner, s.name, c, "error", one_line(tr("the grader failed: {error}", error=exc)),
                                  tr("the grader failed on this notebook: {error}", error=f"{type(exc).__name__}: {exc}"),
                                  ex.stem if ex else "", language()) for c in checks]
            atomic_write(_rows_file(folder, subs[i]), json.dumps(
                {"key": keys[i], "learner": subs[i].learner, "notebook": subs[i].name,
                 "rows": [dataclasses.asdict(r) for r in results[i]]}))
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    rows = [row for i in range(len(subs)) for row in results[i]]
    counts = {status: sum(r.status == status for r in rows) for status in STATUSES}
    summary = {"learners": len(learners), "notebooks": len(subs), "graded": len(todo), **counts, "seconds": seconds,
               "jobs": jobs, "limit": timeout, "loose": [str(p) for p in loose], "sandbox": protection,
               "namespaces": namespaces}
    summary["written"] = report.write_all(rows, learners, out, summary)
    return summary


def summary_line(s: dict) -> str:
    per = s["seconds"] / max(1, s["graded"])
    earlier = s["notebooks"] - s["graded"]
    return (f"graded {s['learners']} learners, {s['notebooks']} notebooks: {s['pass']} passes, "
            f"{s['fail']} failures, {s['not_done']} not done, {s['error']} errors, {s['timeout']} timeouts "
            f"(checks); {s['graded']} notebooks run in {s['seconds']:.1f} s ({per:.1f} s per notebook, "
            f"{s['jobs']} at a time)" + (f", {earlier} taken from an earlier run (--fresh grades them again)"
                                         if earlier else ""))


def grade_main(argv: list[str] | None = None) -> int:
    """``python -m cbam_course grade DIR --out grades.csv [--timeout S] [--jobs N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m cbam_course grade",
        description="Run every learner's exercise notebooks, each in its own limited kernel, check "
                    "them with the course's checkers, and write a gradebook and feedback.")
    parser.add_argument("dir", type=Path, help="one folder per learner, with that learner's notebooks inside")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"),
                        help="the gradebook (default grades.csv); grades.md and feedback/ go beside it")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per notebook, kernel start to last check (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--jobs", type=int, default=None,
                        help=f"notebooks graded at a time (default: the usable cores, at most {MAX_DEFAULT_JOBS}; "
                             f"here {default_jobs()})")
    parser.add_argument("--memory", type=int, default=DEFAULT_MEMORY_MIB, metavar="MIB",
                        help=f"memory a kernel may allocate, Linux only (default {DEFAULT_MEMORY_MIB}; 0: no limit)")
    parser.add_argument("--solutions", type=Path, default=None,
                        help="the course's solutions/ folder, which lists each exercise's checks "
                             "(default: the one beside the installed package)")
    parser.add_argument("--fresh", action="store_true",
                        help="grade every notebook again, not only those an earlier run did not finish")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or (args.jobs is not None and args.jobs < 1) or args.memory < 0:
        parser.error("--timeout and --jobs must be positive, --memory zero or more")
    try:
        import ipykernel  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as exc:
        print(f"error: the grader runs notebooks and needs {exc.name}: .venv/bin/pip install -e '.[lab,test]'",
              file=sys.stderr)
        return 2
    print(f"sandbox: {sandbox.status()[1]}.", file=sys.stderr)
    try:
        summary = grade(args.dir, args.out, timeout=args.timeout, jobs=args.jobs, memory_mib=args.memory or None,
                        solutions=args.solutions, progress=not args.no_progress, fresh=args.fresh)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary["loose"]:
        print(f"note: {len(summary['loose'])} notebooks lie directly in {args.dir} and were not graded: put "
              f"each learner's notebooks in a folder named after the learner.", file=sys.stderr)
    print(summary_line(summary))
    print("wrote " + ", ".join(str(p) for p in summary["written"]))
    return 0
