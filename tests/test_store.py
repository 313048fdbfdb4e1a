"""The run store: a run's identity, a prepared store that lessons 05 and 06 read without
training or writing, and a clear message for every kind of damage. On the stand-in (quick profile);
no network, no ../shared."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import stat
from pathlib import Path

import nbformat
import pytest
import torch

from cbam_course.__main__ import main
from cbam_course.grading.run import execute, kernel_env
from cbam_course.train import make_standin
from cbam_course.train import recipes as recipes_module
from cbam_course.train import store as store_module
from cbam_course.train.prepare import comparison_runs, comparison_seeds, lesson_setup, plan_lesson, prepare
from cbam_course.train.recipes import get_profile, get_recipe
from cbam_course.train.store import (MANIFEST_NAME, MODEL_VERSION, RunStore, RunStoreError, fetch_run,
                                     make_spec)

ROOT = Path(__file__).resolve().parents[1]
QUICK = get_profile("quick")


# ---- identity -------------------------------------------------------------------------------


def test_a_runs_identity_is_stable_and_changes_with_what_determines_it():
    data = make_standin(64, 32, seed=0)

    def spec(attention="cbam", data=data, **kw):
        return make_spec(attention, profile=QUICK, data=data, **kw)

    base = spec(seed=0)
    # The same settings find the same run: again, with the data generated afresh, with the defaults
    # spelt out, and with "no time budget" said as infinity (as lesson 06 says it).
    assert spec(seed=0).run_id == base.run_id
    assert spec(data=make_standin(64, 32, seed=0)).run_id == base.run_id
    assert spec(recipe=get_recipe(QUICK.recipe), width=QUICK.width, epochs=QUICK.epochs,
                max_steps=QUICK.max_steps).run_id == base.run_id
    assert spec(time_budget=math.inf).run_id == base.run_id
    assert base.folder_name == f"cbam-w{QUICK.width}-seed0-{base.run_id[:8]}"
    assert base.identity()["model_version"] == MODEL_VERSION
    # Any change to the network, the recipe, the seed, the budgets or the data finds another run.
    others = {
        "attention": spec("se"), "width": spec(width=QUICK.width * 2),
        "recipe": spec(recipe=get_recipe(QUICK.recipe, lr=0.1)),
        "recipe batch": spec(recipe=get_recipe(QUICK.recipe, batch_size=64)),
        "recipe name": spec(recipe="day50"), "seed": spec(seed=1), "epochs": spec(epochs=QUICK.epochs + 1),
        "steps": spec(max_steps=7), "time": spec(time_budget=60.0), "profile": make_spec("cbam", profile="laptop",
                                                                                          width=QUICK.width, data=data),
        "data seed": spec(data=make_standin(64, 32, seed=1)), "data size": spec(data=make_standin(65, 32, seed=0)),
    }
    ids = {name: s.run_id for name, s in others.items()}
    assert base.run_id not in ids.values(), ids
    assert len(set(ids.values())) == len(ids), ids
    # A new model version finds another run too.
    assert store_module.RunSpec(**{**base.__dict__, "model_version": MODEL_VERSION + 1}).run_id != base.run_id


# ---- a prepared store, read-only --------------------------------------------------------------


def _snapshot(root: Path) -> dict:
    """Every file's sha256 and mtime, every folder's mtime: what "nothing changed" compares."""
    snap = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        snap[str(path.relative_to(root))] = (digest, st.st_mtime_ns)
    snap["."] = ("dir", root.stat().st_mtime_ns)
    return snap


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A quick store with every run lessons 05 and 06 show (3 seeds), made read-only."""
    tmp = tmp_path_factory.mktemp("store")
    root, fallback = tmp / "runs", tmp / "fallback"
    runs = prepare("quick", seeds=3, store=RunStore(root, fallback), progress=False)
    assert len(runs) == 2 + 5 * 3 and all(r.trained for r in runs)
    assert not fallback.exists()
    _set_writable(root, False)
    yield root, fallback
    _set_writable(root, True)


# What "outside quick mode" changes in lesson 06's first cell: its seeds come from the store alone.
QUICK_SEEDS = "at_least=3 if QUICK else 1"


def _run_lesson(name: str, root: Path, cache: Path, mpl: Path, seeds_as_outside_quick_mode: bool = False):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    if seeds_as_outside_quick_mode:
        (first,) = [c for c in nb.cells if c.cell_type == "code" and QUICK_SEEDS in c.source]
        first.source = first.source.replace(QUICK_SEEDS, "at_least=1")
    env = kernel_env({"CBAM_COURSE_QUICK": "1", "CBAM_COURSE_RUNS": str(root), "XDG_CACHE_HOME": str(cache),
                      "MPLCONFIGDIR": str(mpl),  # matplotlib's font cache would land in XDG_CACHE_HOME
                      "MPLBACKEND": "Agg", "CBAM_COURSE_PROFILE": None})
    done = execute(nb, cwd=ROOT / "notebooks", env=env, limit=300, cell_timeout=120, quiet=True)
    assert done.error is None, f"{name}: {done.error}"
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_lessons_05_and_06_read_a_read_only_store_and_train_nothing(prepared, tmp_path):
    """Their first screens find every run in the store; lesson 06, choosing its seeds as outside
    quick mode, takes all three the store holds and tests each difference against their noise."""
    root, _ = prepared
    before = _snapshot(root)
    cache = tmp_path / "cache"  # where a missing run would be trained: it must stay empty
    text05 = _run_lesson("05_cifar10_training.ipynb", root, cache, tmp_path / "mpl")
    assert "2 runs in this lesson, all in the run store" in text05.splitlines()[0], text05[:500]
    assert text05.count("loaded from the run store, not trained") == 2, text05[-2000:]
    assert "training (not in the run store yet)" not in text05
    text06 = _run_lesson("06_se_comparison.ipynb", root, cache, tmp_path / "mpl", seeds_as_outside_quick_mode=True)
    assert "15 runs in this lesson, all in the run store" in text06.splitlines()[0], text06[:500]
    assert "Seeds 0, 1, 2: 3 runs per network" in text06
    assert "15 runs: 0 trained now, 15 loaded from the run store" in text06, text06[-2000:]
    table = [line for line in text06.splitlines() if re.match(r"\s*same (epochs|time)\s+\w+ - \w+", line)]
    assert len(table) == 6 and all("±" in line and "[" in line for line in table), table
    assert not cache.exists(), sorted(cache.rglob("*"))
    assert _snapshot(root) == before


def test_lesson_06_with_one_seed_in_the_store_says_how_to_get_more_and_skips_its_tests(prepared, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(prepared[0], root)
    _set_writable(root, True)
    for folder in (root / "quick").iterdir():
        if re.search(r"-seed[12]-", folder.name):
            shutil.rmtree(folder)
    before = _snapshot(root)
    text06 = _run_lesson("06_se_comparison.ipynb", root, tmp_path / "cache", tmp_path / "mpl",
                         seeds_as_outside_quick_mode=True)
    assert "5 runs in this lesson, all in the run store" in text06.splitlines()[0], text06[:500]
    advice = "One seed (0): one run per network measures no noise"
    assert text06.count(advice) == 2, text06  # on the first screen and where the tests would be
    assert "`python -m cbam_course prepare --profile quick --seeds 3`" in text06 and "SEEDS = [0, 1, 2]" in text06
    assert "5 runs: 0 trained now, 5 loaded from the run store" in text06
    assert "Holm" not in text06 and not re.search(r"same epochs\s+se - none", text06)  # no numbers from one run
    assert _snapshot(root) == before and not (tmp_path / "cache").exists()


# ---- the first screen: what is stored, what must train -------------------------------------------


@pytest.fixture
def fixed_estimate(monkeypatch):
    """A training run "costs" 100 s in every profile, so the first screen's numbers are known."""
    monkeypatch.setattr(recipes_module, "estimate_seconds", lambda profile, device=None: 100.0)


def _first_line(plan) -> str:
    return plan.describe().splitlines()[0]


def test_the_first_screen_of_a_prepared_store_loads_everything_in_seconds(prepared, fixed_estimate):
    root, fallback = prepared
    store = RunStore(root, fallback)
    before = _snapshot(root)
    plan05 = plan_lesson(5, QUICK, store=store)
    plan06 = plan_lesson(6, QUICK, seeds=[0, 1, 2], store=store)
    assert (plan05.runs, plan05.stored, plan05.to_train) == (2, 2, 0)
    assert (plan06.runs, plan06.stored, plan06.to_train) == (15, 15, 0)
    for plan, runs in ((plan05, 2), (plan06, 15)):
        line = _first_line(plan)
        assert f"{runs} runs in this lesson, all in the run store ({store_module._shown(root)}): loaded, not trained" in line
        seconds = int(re.search(r"not trained, about (\d+) s on this machine", line).group(1))
        assert 1 <= seconds < 60, line
    assert "'laptop' about 25 minutes" in plan06.describe()   # the other modes: training every run
    assert plan_lesson(6, QUICK, store=store).seeds == (0, 1, 2)  # by default, every seed the store holds
    assert _snapshot(root) == before and not fallback.exists()  # looking up trains and writes nothing


def test_the_first_screen_of_an_empty_store_gives_the_training_estimate(tmp_path, fixed_estimate):
    store = RunStore(tmp_path / "runs", tmp_path / "fallback")
    plan05, plan06 = plan_lesson(5, QUICK, store=store), plan_lesson(6, QUICK, seeds=[0, 1, 2], store=store)
    assert (plan05.stored, plan05.to_train, plan06.stored, plan06.to_train) == (0, 2, 0, 15)
    assert _first_line(plan05).endswith("2 runs in this lesson, none of them in the run store "
                                        f"({store_module._shown(tmp_path / 'runs')}) yet: all trained here, "
                                        "about 3 minutes on this machine (estimated).")
    assert "15 runs in this lesson, none of them in the run store" in _first_line(plan06)
    assert "all trained here, about 25 minutes on this machine" in _first_line(plan06)
    assert comparison_seeds(QUICK, store=store) == [0] and comparison_seeds(QUICK, store=store, at_least=3) == [0, 1, 2]
    assert "One seed (0)" in plan_lesson(6, QUICK, store=store).describe()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "fallback").exists()


def test_the_first_screen_of_a_partial_store_counts_both_and_trains_what_waits_on_a_missing_plain_run(
        prepared, tmp_path, fixed_estimate):
    root = tmp_path / "runs"
    shutil.copytree(prepared[0], root)
    _set_writable(root, True)
    store = RunStore(root, tmp_path / "fallback")
    runs = comparison_runs([0, 1, 2], QUICK, store=store, progress=False, live_plot=False, verbose=False)
    shutil.rmtree(runs["same epochs"]["se"][2].folder)   # seed 2: one run missing
    shutil.rmtree(runs["same epochs"]["none"][1].folder)  # seed 1: the plain run missing. SE's and CBAM's
    # runs of seed 1 are still stored, but their budgets come from the plain run's steps and seconds
    # (quick mode has no time budget): until it is trained again, they cannot be looked up.
    plan = plan_lesson(6, QUICK, seeds=[0, 1, 2], store=store)
    assert (plan.runs, plan.stored, plan.to_train) == (15, 9, 6)
    line = _first_line(plan)
    assert f"15 runs in this lesson: 9 in the run store ({store_module._shown(root)}), loaded (about " in line
    assert "6 to train, about 10 minutes on this machine (estimated)" in line
    assert comparison_seeds(QUICK, store=store) == [0]        # only seed 0 is whole
    lesson05 = lesson_setup(5, QUICK)
    shutil.rmtree(fetch_run("cbam", profile=QUICK, recipe=lesson05.recipe, data=lesson05.load_data(QUICK),
                            store=store, progress=False, live_plot=False, verbose=False).folder)
    assert "2 runs in this lesson: 1 in the run store" in _first_line(plan_lesson(5, QUICK, store=store))
    assert not (tmp_path / "fallback").exists()


def test_the_first_screen_without_cifar10_says_it_could_not_look(tmp_path, fixed_estimate):
    plan = plan_lesson(5, "laptop", data_root=tmp_path / "no-data", store=tmp_path / "runs")
    assert plan.stored is None and plan.runs == 2
    text = plan.describe()
    assert text.startswith("Mode: 'laptop': real CIFAR-10, 2 training runs in this lesson: about 3 minutes")
    assert "CIFAR-10 is not on this machine yet" in text and "was not searched" in text
    assert not (tmp_path / "no-data").exists() and not (tmp_path / "runs").exists()  # nothing downloaded


# ---- damage, one kind at a time ---------------------------------------------------------------


def _lesson05_cbam(root: Path, fallback: Path):
    """Look up lesson 05's CBAM run as the lesson does."""
    setup = lesson_setup(5, QUICK)
    return fetch_run("cbam", profile=QUICK, recipe=setup.recipe, data=setup.load_data(QUICK), seed=0,
                     store=RunStore(root, fallback), progress=False, live_plot=False, verbose=False)


def _rewrite_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def _damages():
    def flip_byte(folder):
        path = folder / "checkpoint.pt"
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))

    def edit_metrics(folder):
        path = folder / "metrics.json"
        path.write_text(path.read_text().replace('"epoch": 1', '"epoch": 7', 1))

    def not_a_checkpoint(folder, payload=b"these are not the weights you are looking for\n"):
        (folder / "checkpoint.pt").write_bytes(payload)
        files = json.loads((folder / MANIFEST_NAME).read_text())["files"]
        files["checkpoint.pt"]["sha256"] = hashlib.sha256(payload).hexdigest()  # so the checksum passes
        _rewrite_manifest(folder, files=files)

    def tensors_only(folder):
        torch.save({"not": torch.zeros(2)}, folder / "checkpoint.pt")
        not_a_checkpoint(folder, (folder / "checkpoint.pt").read_bytes())

    return {
        "checksum, checkpoint": (flip_byte, "checkpoint.pt is damaged: its checksum"),
        "checksum, metrics": (edit_metrics, "metrics.json is damaged: its checksum"),
        "missing file": (lambda f: (f / "metrics.json").unlink(), "metrics.json is missing"),
        "partial, unfinished": (lambda f: _rewrite_manifest(f, finished=False), "is partial"),
        "partial, no manifest": (lambda f: (f / MANIFEST_NAME).unlink(), "is partial"),
        "other model version": (lambda f: _rewrite_manifest(f, model_version=MODEL_VERSION - 1),
                                f"model version {MODEL_VERSION - 1} of the course, and this one is version"),
        "manifest does not parse": (lambda f: (f / MANIFEST_NAME).write_text('{"finished": tr'), "does not parse"),
        "not a checkpoint": (not_a_checkpoint, "not a PyTorch checkpoint"),
        "not a model checkpoint": (tensors_only, "does not fit the model here"),
    }


@pytest.mark.parametrize("kind", list(_damages()))
def test_a_damaged_run_says_what_is_wrong_and_what_to_do(prepared, tmp_path, kind):
    damage, expected = _damages()[kind]
    root = tmp_path / "runs"
    shutil.copytree(prepared[0], root)
    _set_writable(root, True)
    folder = _lesson05_cbam(root, tmp_path / "fallback").folder
    damage(folder)
    _set_writable(root, False)
    try:
        with pytest.raises(RunStoreError) as err:
            _lesson05_cbam(root, tmp_path / "fallback")
    finally:
        _set_writable(root, True)
    message = str(err.value)
    assert expected in message, message
    assert "read-only" in message and "prepare --profile quick" in message and "CBAM_COURSE_RUNS" in message, message
    assert str(folder) in message, message
    assert not (tmp_path / "fallback").exists()  # nothing was trained instead
    assert err.value._render_traceback_() == [f"RunStoreError: {message}"]  # a notebook shows just this


def test_a_store_of_another_model_version_says_so(prepared, tmp_path, monkeypatch):
    """After MODEL_VERSION is bumped, the old runs are found and named, not silently trained again."""
    monkeypatch.setattr(store_module, "MODEL_VERSION", MODEL_VERSION + 1)
    with pytest.raises(RunStoreError) as err:
        _lesson05_cbam(prepared[0], tmp_path / "fallback")
    message = str(err.value)
    assert "from another model version of the course" in message and f"version {MODEL_VERSION + 1}" in message
    assert "cbam-w16-seed0-" in message and "prepare --profile quick" in message, message
    assert not (tmp_path / "fallback").exists()


def test_the_command_line_loads_a_stored_run_and_refuses_a_damaged_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CBAM_COURSE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["train", "--quick", "--width", "16", "--max-steps", "2", "--no-progress"]
    assert main(args) == 0
    assert "training (not in the run store yet)" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "loaded from the run store, not trained" in out and "To train it afresh, delete that folder" in out
    (manifest,) = (tmp_path / "runs" / "quick").glob(f"*/{MANIFEST_NAME}")
    manifest.write_text("not json")
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The manifest") and "does not parse" in err[0], err


@pytest.mark.skipif(os.name != "posix", reason="the run lock is POSIX flock; Windows runs unlocked (store.py)")
def test_a_run_another_process_is_training_is_waited_for_then_loaded(tmp_path, monkeypatch, capsys):
    """Two kernels asking for one run (the English and the Chinese lesson 05 side by side): the second
    waits while the first holds the run's lock, then loads what the first stored, training nothing."""
    import fcntl
    import subprocess
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ["train", "--quick", "--width", "16", "--max-steps", "2", "--no-progress"]
    monkeypatch.setenv("CBAM_COURSE_RUNS", str(tmp_path / "first"))
    assert main(args) == 0                                    # the run, as the first process will store it
    (trained,) = (tmp_path / "first" / "quick").iterdir()
    shared = tmp_path / "shared" / "quick" / trained.name
    shared.mkdir(parents=True)
    lock = os.open(shared, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)                          # the first process, training it
    try:
        second = subprocess.Popen([sys.executable, "-m", "cbam_course", *args], cwd=tmp_path, text=True,
                                  env=dict(os.environ, CBAM_COURSE_RUNS=str(tmp_path / "shared")),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        waiting = second.stdout.readline()
        assert "another process is training this run" in waiting, waiting + second.communicate()[0]
        shutil.copytree(trained, shared, dirs_exist_ok=True)  # ... which it stores, and lets go
    finally:
        os.close(lock)
    out = second.communicate(timeout=120)[0]
    assert second.returncode == 0, out
    assert "loaded from the run store, not trained" in out and "training (not in the run store yet)" not in out, out


def test_the_timing_only_store_holds_every_run_of_the_profile_each_trained_a_few_steps(prepared, tmp_path):
    """tools/timing_store.py (for timing lessons 05 and 06 with a store): the profile's identities,
    the same ones prepare trains, but each run stops after --steps steps."""
    import subprocess
    import sys

    env = {**os.environ, "CBAM_COURSE_QUICK": "1", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "timing_store.py"), "--profile", "quick",
                           "--data", str(tmp_path / "unused"), "--store", str(tmp_path / "timing"), "--steps", "2"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp_path / "timing" / "quick").glob(f"*/{MANIFEST_NAME}"))
    real = {p.name for p in (prepared[0] / "quick").iterdir()}
    # SE's and CBAM's comparison runs take their step and time budgets from the plain run of their
    # seed, so their identities follow it; the plain runs' identities are the prepared store's.
    assert len(runs) == len(real)
    plain = {m.parent.name for m in runs if m.parent.name.startswith("none-")}
    assert plain == {name for name in real if name.startswith("none-")} and len(plain) == 4
    for manifest in runs:
        history = json.loads((manifest.parent / "metrics.json").read_text())
        assert sum(epoch["steps"] for epoch in history["epochs"]) == 2, manifest.parent.name
