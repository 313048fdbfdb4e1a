"""cbam_course.train (loops, history, checkpoints, budget, trainer, run) and recipes: the loops, History, checkpoints (safe loading, foreign and
damaged files), exact CPU reproducibility, exact resume after an epoch and after an interrupt,
budgets, and the recipes' numbers. All on the stand-in at width 16, a few steps each."""
from __future__ import annotations

import json
from dataclasses import replace

import matplotlib
import pytest
import torch
import torch.nn as nn

matplotlib.use("Agg")

from cbam_course import AttentionCNN, seed_everything
from cbam_course.train import (CheckpointError, History, Trainer, evaluate, load_checkpoint, train_model,
                               train_step)
from cbam_course.train.data import BatchLoader, make_standin
from cbam_course.train.loops import scores
from cbam_course.train.history import LivePlot
from cbam_course.train.recipes import PROFILES, RECIPES, OneCycle, get_profile, get_recipe

TINY = get_recipe("fast", batch_size=32, eval_batch_size=64, epochs=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def standin():
    return make_standin(128, 64, seed=0)


def _trainer(standin, attention="cbam", seed=0, recipe=TINY, **kw):
    seed_everything(seed)
    model = AttentionCNN(attention=attention, width=16)
    return Trainer(model, *standin, recipe, device="cpu", seed=seed, progress=False, live_plot=False, **kw)


def _same_history(a: History, b: History) -> bool:
    return a.to_dict() == b.to_dict() if not any("seconds" in e for e in a.epochs) else (
        a.iter_losses == b.iter_losses
        and [{k: v for k, v in e.items() if k != "seconds"} for e in a.epochs]
        == [{k: v for k, v in e.items() if k != "seconds"} for e in b.epochs])


# ---- the two loops ------------------------------------------------------------------------------

def test_train_step_updates_and_returns_the_loss(standin):
    torch.manual_seed(0)
    model = AttentionCNN(attention="none", width=16)
    images, labels = next(iter(BatchLoader(standin[0], batch_size=16)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    model.eval()  # dropout off, so the returned loss can be recomputed exactly
    expected = nn.CrossEntropyLoss()(model(images), labels).item()
    loss = train_step(model, images, labels, optimizer, nn.CrossEntropyLoss())
    assert isinstance(loss, float) and loss == pytest.approx(expected, rel=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_evaluate_is_mean_loss_per_batch_and_percent_accuracy(standin):
    class Fixed(nn.Module):  # predicts class 0 with a known loss
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(1.0))

        def forward(self, x):
            logits = torch.zeros(x.shape[0], 10)
            logits[:, 0] = 2.0 * self.scale
            return logits

    test = standin[1]
    loader = BatchLoader(test, batch_size=24)  # 64 images: batches of 24, 24, 16
    model = Fixed()
    loss, acc = evaluate(model, loader, nn.CrossEntropyLoss(), "cpu")
    per_image = nn.CrossEntropyLoss(reduction="none")(model(torch.zeros(64, 3, 32, 32)), test.labels)
    batch_means = [per_image[i:i + 24].mean().item() for i in (0, 24, 48)]
    assert loss == pytest.approx(sum(batch_means) / 3, rel=1e-6)
    assert acc == pytest.approx(100.0 * (test.labels == 0).sum().item() / 64)
    assert not model.training
    tested = scores(model, loader, nn.CrossEntropyLoss(), "cpu", tta=True)
    assert (tested["loss"], tested["acc"]) == pytest.approx((loss, acc))  # the same loop as evaluate
    assert tested["tta_acc"] == pytest.approx(acc)  # a flip-invariant model: the same accuracy flipped


# ---- History ------------------------------------------------------------------------------------

def test_history_round_trips_and_plots(tmp_path):
    h = History([2.3, 2.0, 1.7], [
        {"epoch": 1, "train_loss": 2.1, "train_acc": 20.0, "test_loss": 2.0, "test_acc": 25.0, "lr": 0.1,
         "seconds": 1.5, "steps": 3}])
    assert History.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    h.to_json(tmp_path / "h.json")
    assert History.from_json(tmp_path / "h.json") == h
    assert h.eval_acc == [25.0] and h.eval_split == "test" and h.train_loss == [2.1]
    assert h.final_test_acc is None  # no final test yet
    h.test = {"loss": 1.9, "acc": 26.0, "tta_acc": None}
    assert History.from_dict(json.loads(json.dumps(h.to_dict()))) == h and h.final_test_acc == 26.0
    fig = h.plot_iterations()
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() == "Iteration" and ax.get_ylabel() == "Loss"
    fig2 = h.plot_epochs()
    assert [a.get_ylabel() for a in fig2.axes] == ["Accuracy (%)", "Loss"]
    assert all(a.get_title() and a.get_xlabel() == "Epoch" for a in fig2.axes)
    assert not LivePlot().enabled  # not in a notebook: no live plot


# ---- runs ---------------------------------------------------------------------------------------

def test_seeded_cpu_runs_repeat_exactly(standin):
    a = _trainer(standin, seed=3).fit(2)
    b = _trainer(standin, seed=3).fit(2)
    c = _trainer(standin, seed=4).fit(1)
    assert len(a.iter_losses) == 8 and len(a) == 2
    assert _same_history(a, b)
    assert a.iter_losses[:4] != c.iter_losses


def test_resume_after_an_epoch_and_after_an_interrupt_is_exact(standin, tmp_path, monkeypatch):
    # The Day 50 lesson's recipe (its schedule does not depend on the planned length): one epoch,
    # checkpoint, then a fresh trainer resumes for the second and matches a straight run.
    day50_recipe = get_recipe("day50", batch_size=32, eval_batch_size=64)
    plateau = _trainer(standin, seed=1, recipe=day50_recipe)
    plateau.fit(2)
    first = _trainer(standin, seed=1, recipe=day50_recipe, checkpoint_path=tmp_path / "a.pt")
    first.fit(1)
    resumed = _trainer(standin, seed=99, recipe=day50_recipe, checkpoint_path=tmp_path / "a.pt").resume()
    assert resumed.epoch == 1 and resumed.step == 4
    resumed.fit(2)
    assert _same_history(resumed.history, plateau.history)
    assert all(torch.equal(p, q) for p, q in zip(resumed.model.state_dict().values(),
                                                 plateau.model.state_dict().values()))
    straight = _trainer(standin, seed=1)
    straight.fit(2)
    # an interrupt in the middle of epoch 2 (the 6th step): history kept, checkpoint written
    interrupted = _trainer(standin, seed=1, checkpoint_path=tmp_path / "b.pt", metrics_path=tmp_path / "m.json")
    import cbam_course.train.trainer as trainer_module

    real_step, calls = trainer_module.mixed_precision_step, {"n": 0}

    def stop_on_sixth(*args):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(trainer_module, "mixed_precision_step", stop_on_sixth)
    history = interrupted.fit(2)
    monkeypatch.setattr(trainer_module, "mixed_precision_step", real_step)
    assert len(history.iter_losses) == 5 and len(history) == 1
    assert (tmp_path / "b.pt").is_file()
    assert len(json.loads((tmp_path / "m.json").read_text())["epochs"]) == 1
    finished = _trainer(standin, seed=7, checkpoint_path=tmp_path / "b.pt").resume()
    finished.fit(2)
    assert finished.history.iter_losses == straight.history.iter_losses
    assert [e["val_acc"] for e in finished.history.epochs] == straight.history.eval_acc
    assert finished.history.test == straight.history.test
    # an interrupt while evaluating epoch 1: the resumed run evaluates it, then trains epoch 2
    during_eval = _trainer(standin, seed=1, checkpoint_path=tmp_path / "e.pt")
    monkeypatch.setattr(trainer_module, "evaluate", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    during_eval.fit(2)
    monkeypatch.undo()
    assert len(during_eval.history.iter_losses) == 4 and len(during_eval.history) == 0
    finished = _trainer(standin, seed=7, checkpoint_path=tmp_path / "e.pt").resume()
    finished.fit(2)
    assert finished.step == 8 and finished.history.iter_losses == straight.history.iter_losses
    assert finished.history.eval_acc == straight.history.eval_acc
    assert finished.history.test == straight.history.test


def test_a_course_recipe_holds_out_a_validation_set_and_tests_once(standin, monkeypatch):
    import cbam_course.train.trainer as trainer_module

    t = _trainer(standin, tta=True)
    train_images = {tuple(x.flatten().tolist()) for x in t.train_loader.data.images}
    val_images = {tuple(x.flatten().tolist()) for x in t.val_data.images}
    assert len(t.val_data) == 13 and len(t.train_loader.data) == 115 and not train_images & val_images
    assert t.config["val_data"] and "validation" in t.val_data.description
    tested = []
    real = trainer_module.scores
    monkeypatch.setattr(trainer_module, "scores", lambda *a, **k: tested.append(1) or real(*a, **k))
    h = t.fit(2)
    assert h.eval_split == "val" and len(h.eval_acc) == 2 and len(tested) == 1  # the test set, once
    assert h.test["epoch"] == 2 and h.test["tta_acc"] is not None
    assert h.test == {**real(t.model, t.test_loader, t.criterion, "cpu", True), "epoch": 2, "step": 8}
    t.fit(2)  # nothing left to train: no second look at the test set
    assert len(tested) == 1
    # the same split in every run, whatever the run's seed
    assert torch.equal(_trainer(standin, seed=5).val_data.labels, t.val_data.labels)
    # the Day 50 lesson's recipe evaluates the test set every epoch, as it did
    day50 = _trainer(standin, recipe=get_recipe("day50", batch_size=32, eval_batch_size=64))
    hs = day50.fit(1)
    assert day50.val_data is None and hs.eval_split == "test" and hs.final_test_acc == hs.eval_acc[-1]


def test_the_time_budget_plans_steps_and_evaluations_to_its_end(monkeypatch):
    """TimeBudget's plan, on a fake clock: 1 s a step, evaluations 0.01 s an image."""
    import cbam_course.train.budget as budget_module

    clock = {"t": 0.0}
    monkeypatch.setattr(budget_module.time, "perf_counter", lambda: clock["t"])
    b = budget_module.TimeBudget(100.0, 0, steps_per_epoch=10, steps_left_in_epoch=10, batch_size=10,
                                 eval_images=100, final_images=200)
    assert b.steps_left(0) == float("inf")
    clock["t"] = 30.0   # a slow first step (one-time costs): it is not what the plan is made from
    b.stepped()
    assert b.steps_left(1) == float("inf")
    clock["t"] = 31.0
    b.stepped()
    # 69 s left at 1 s a step; m epochs' evaluations cost m s, the final test 2 s: 8 more steps end
    # epoch 1 (1 eval), then 10 per epoch: m = 6 gives 8 + 50 = 58 steps, 6 evals and 2 s = 66 s; m = 7
    # would need 68 steps and 7 + 2 s = 77 s, so it is cut to 69 - 7 - 2 = 60 steps.
    b.evaluated(1.0, 100)
    b.eval_spent = 0.0  # the evaluation above only sets the cost per image
    assert b.steps_left(2) == 60
    assert b.progress(2, planned=1000) == pytest.approx(2 / 62)
    assert b.progress(2, planned=20) == pytest.approx(2 / 20)  # the planned epochs end sooner
    clock["t"] = 97.5
    assert b.out_of_time(90) and b.steps_left(90) == 0


def test_a_budgeted_run_ends_its_schedule_and_final_test_inside_the_budget(monkeypatch):
    """The whole budget used: the run ends within 2% of its budget, with the learning rate annealed
    (the one-cycle schedule at its end) and the final test taken. On a clock of its own (a step
    costs 0.1 s, evaluating an image 1 ms), so that what is tested is the budget's planning and
    not how busy the machine is; the real runs' use of their 600 s is in docs/performance.md."""
    import types

    from cbam_course.train import budget as budget_module, trainer as trainer_module

    now = [0.0]
    clock = types.SimpleNamespace(perf_counter=lambda: now[0])
    monkeypatch.setattr(budget_module, "time", clock)
    monkeypatch.setattr(trainer_module, "time", clock)
    step, evaluate, scores = (trainer_module.mixed_precision_step, trainer_module.evaluate, trainer_module.scores)

    def timed(fn, cost):
        def run(*args, **kwargs):
            now[0] += cost(*args)
            return fn(*args, **kwargs)
        return run

    monkeypatch.setattr(trainer_module, "mixed_precision_step", timed(step, lambda *a: 0.1))
    monkeypatch.setattr(trainer_module, "evaluate", timed(evaluate, lambda m, loader, *a: 1e-3 * len(loader.data)))
    monkeypatch.setattr(trainer_module, "scores", timed(scores, lambda m, loader, c, d, tta=False:
                                                        1e-3 * len(loader.data) * (2 if tta else 1)))
    data = make_standin(1024, 256, seed=0)
    seed_everything(0)
    t = Trainer(AttentionCNN(attention="cbam", width=16), *data, get_recipe("fast", batch_size=32),
                device="cpu", progress=False, live_plot=False, tta=True)
    h = t.fit(100, time_budget=6.0)
    assert 0.98 * 6.0 <= now[0] <= 6.0, now[0]
    assert h.test is not None and h.test["tta_acc"] is not None
    assert t.scheduler.progress > 0.97, t.scheduler.progress


def test_budgets_stop_early_and_record_the_epoch(standin):
    t = _trainer(standin)
    h = t.fit(5, max_steps=3)
    assert t.step == 3 and len(h) == 1 and h.epochs[0]["steps"] == 3
    t2 = _trainer(standin)
    h2 = t2.fit(50, time_budget=0.01)
    assert t2.step == 1 and len(h2) == 1  # at least one step, then stop


def test_standin_is_learnable_beyond_chance():
    """The stand-in must teach something in a few hundred steps, or quick mode shows nothing."""
    data = make_standin(1024, 256, seed=0)
    seed_everything(0)
    model = AttentionCNN(attention="none", width=16)
    t = Trainer(model, *data, get_recipe("fast", batch_size=64, lr=0.1, eval_batch_size=256),
                device="cpu", progress=False, live_plot=False)
    h = t.fit(3)
    assert h.final_test_acc > 30.0, (h.eval_acc, h.test)  # chance is 10%


# ---- checkpoints --------------------------------------------------------------------------------

def test_checkpoints_load_safely_and_refuse_other_models(standin, tmp_path):
    t = _trainer(standin, attention="cbam", checkpoint_path=tmp_path / "c.pt")
    t.fit(1)
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert {"model", "optimizer", "scheduler", "history", "config", "rng"} <= set(ckpt)
    assert ckpt["config"]["model"] == {"class": "AttentionCNN", "attention": "cbam", "width": 16, "num_classes": 10}
    same = AttentionCNN(attention="cbam", width=16)
    load_checkpoint(tmp_path / "c.pt", same)
    assert torch.equal(same.conv1[0].weight, t.model.conv1[0].weight)
    with pytest.raises(CheckpointError, match="attention='cbam'.*attention='none'"):
        load_checkpoint(tmp_path / "c.pt", AttentionCNN(attention="none", width=16))
    with pytest.raises(CheckpointError, match="width=32"):
        load_checkpoint(tmp_path / "c.pt", AttentionCNN(attention="cbam", width=32))
    # a plain state_dict of another architecture: the message names a mismatching tensor
    torch.save(AttentionCNN(attention="se", width=16).state_dict(), tmp_path / "se.pt")
    with pytest.raises(CheckpointError, match="missing|unexpected"):
        load_checkpoint(tmp_path / "se.pt", same)
    # damaged: truncated
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "bad.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "bad.pt", same)
    # not tensors only: refused by weights_only, with a clear message
    torch.save({"model": {}, "evil": History()}, tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match="not loaded for safety|damaged"):
        load_checkpoint(tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "nothing.pt")
    # resuming with another recipe is refused too
    other = _trainer(standin, attention="cbam", recipe=get_recipe("day50", batch_size=32))
    with pytest.raises(CheckpointError, match="recipe"):
        other.resume(tmp_path / "c.pt")


def test_train_model_writes_checkpoint_and_metrics(tmp_path, standin):
    trainer = train_model("se", profile="quick", data=standin, out_dir=tmp_path, epochs=1, width=16,
                          progress=False, live_plot=False, device="cpu")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    record = metrics["epochs"][0]
    assert set(record) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}
    assert metrics["test"]["acc"] == trainer.history.final_test_acc and metrics["test"]["epoch"] == 1
    assert (tmp_path / "checkpoint.pt").is_file() and trainer.model.attention == "se"


# ---- recipes and profiles -----------------------------------------------------------------------

def test_seed_recipe_is_the_seeds():
    r = RECIPES["day50"]
    assert (r.optimizer, r.lr, r.weight_decay, r.batch_size, r.epochs) == ("adam", 1e-3, 1e-4, 128, 50)
    model = nn.Linear(2, 2)
    opt = r.make_optimizer(model)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["weight_decay"] == 1e-4
    sched = r.make_scheduler(opt)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert (sched.mode, sched.factor, sched.patience) == ("min", 0.5, 5)
    crit = r.make_criterion()
    assert isinstance(crit, nn.CrossEntropyLoss) and crit.label_smoothing == 0.0
    fast = RECIPES["fast"]
    assert fast.optimizer == "sgd" and fast.nesterov and fast.label_smoothing > 0
    assert isinstance(fast.make_optimizer(model), torch.optim.SGD)


def test_one_cycle_warms_up_then_anneals():
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    s = OneCycle(opt, max_lr=0.2, pct_start=0.25, div_factor=25, final_div_factor=1e4)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2 / 25)
    lrs = [s.lr_at(p / 100) for p in range(101)]
    assert max(lrs) == pytest.approx(0.2) and lrs.index(max(lrs)) == 25
    assert lrs[-1] == pytest.approx(0.2 / 1e4)
    assert all(a <= b for a, b in zip(lrs[:25], lrs[1:26])) and all(a >= b for a, b in zip(lrs[25:], lrs[26:]))


def test_profiles_and_selection(monkeypatch):
    assert set(PROFILES) == {"quick", "laptop", "full"}
    assert PROFILES["quick"].data == "standin" and PROFILES["full"].width == 64
    # full: the Day 50 lesson's network with the fast recipe (measured on an H100, docs/performance.md)
    assert PROFILES["full"].recipe == "fast" and PROFILES["full"].epochs == 20
    assert PROFILES["full"].expected_time != "to be measured" != PROFILES["full"].expected_accuracy
    assert PROFILES["laptop"].time_budget and PROFILES["laptop"].width < 64
    # laptop: the fast recipe in batches of 128, nothing else changed (docs/performance.md, 3b)
    laptop = get_recipe(PROFILES["laptop"].recipe)
    assert laptop.batch_size == 128 and replace(laptop, name="fast", batch_size=256) == RECIPES["fast"]
    monkeypatch.delenv("CBAM_COURSE_QUICK", raising=False)
    monkeypatch.setenv("CBAM_COURSE_PROFILE", "laptop")
    assert get_profile().name == "laptop"
    monkeypatch.setenv("CBAM_COURSE_QUICK", "1")  # quick mode wins, so CI stays quick
    assert get_profile().name == "quick" and get_profile("full").name == "full"
    with pytest.raises(ValueError, match="quick"):
        get_profile("huge")
    with pytest.raises(ValueError, match="day50"):
        get_recipe("slow")


def test_with_no_switch_set_lessons_train_quick_and_the_command_line_for_the_machine(monkeypatch):
    """Nobody starts an hour of training unawares: with neither variable set a lesson gets "quick";
    the command line, where one asks to train, gets the machine's profile (laptop on a CPU)."""
    from cbam_course import quick_mode
    from cbam_course.train.recipes import machine_profile

    monkeypatch.delenv("CBAM_COURSE_QUICK", raising=False)
    monkeypatch.delenv("CBAM_COURSE_PROFILE", raising=False)
    assert get_profile().name == "quick" and not quick_mode()
    assert get_profile(default=machine_profile()).name == machine_profile()
    assert machine_profile() == ("full" if torch.cuda.is_available() else "laptop")
    monkeypatch.setenv("CBAM_COURSE_PROFILE", "quick")  # the one switch makes the whole class quick
    assert quick_mode() and get_profile(default="laptop").name == "quick"
    monkeypatch.setenv("CBAM_COURSE_PROFILE", "laptop")
    assert not quick_mode() and get_profile().name == "laptop"


def test_a_lesson_says_its_mode_its_cost_here_and_how_to_switch(monkeypatch):
    from cbam_course.train.recipes import describe_mode, estimate_seconds

    laptop = describe_mode(PROFILES["laptop"], trainings=2)
    assert laptop.startswith("Mode: 'laptop': real CIFAR-10, 2 training runs in this lesson: about 20 minutes")
    assert "CBAM_COURSE_PROFILE=quick|laptop|full" in laptop and "make lab PROFILE=laptop" in laptop
    quick = describe_mode(PROFILES["quick"], trainings=2)
    assert "generated stand-in" in quick and "'laptop' about 20 minutes" in quick and "'full' about" in quick
    seconds = estimate_seconds(PROFILES["quick"], device="cpu")  # timed here: a few seconds, not minutes
    assert 5 < seconds < 120
    assert estimate_seconds(PROFILES["laptop"]) == PROFILES["laptop"].time_budget


def test_mixed_precision_and_channels_last_path_runs(standin):
    """The CUDA configuration (autocast + channels_last), exercised on the CPU in bfloat16."""
    t = _trainer(standin, amp=True, channels_last=True)
    assert t.amp and t.amp_dtype == torch.bfloat16 and t.channels_last
    h = t.fit(1, max_steps=2)
    assert len(h.iter_losses) == 2 and all(0 < x < 10 for x in h.iter_losses)
    assert t.model.conv1[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_laptop_profile_trains_in_the_set_up_it_measured_fastest(monkeypatch, capsys):
    """On a CPU the laptop profile times its candidate set-ups and trains with the winner (saying
    which); bfloat16 is a candidate only where the profile allows it; the quick profile and
    explicit choices skip the timing."""
    import dataclasses

    from cbam_course.fast.setup import CpuSetup
    from cbam_course.train import run

    assert PROFILES["laptop"].tune_setup and not PROFILES["quick"].tune_setup
    tiny = dataclasses.replace(PROFILES["laptop"], data="standin", width=16, epochs=1, time_budget=None, max_steps=1)
    data = make_standin(64, 32, seed=0)
    asked = []

    def fake_choice(model, batch_size, num_classes, channels_last, bfloat16):
        asked.append(bfloat16)  # None: bfloat16 is timed where native
        layout = True if channels_last is None else channels_last
        fmt = True if bfloat16 is None else bfloat16
        return CpuSetup(channels_last=layout, bfloat16=fmt, threads=torch.get_num_threads()), "Set-up: why."

    monkeypatch.setattr(run, "choose_cpu_setup", fake_choice)
    t = run.train_model("cbam", profile=tiny, data=data, device="cpu", progress=False, live_plot=False)
    assert (t.amp, t.channels_last) == (True, True) and asked == [None]
    assert "Set-up: why." in capsys.readouterr().out
    t = run.train_model("cbam", profile=dataclasses.replace(tiny, cpu_bfloat16=False), data=data, device="cpu",
                        progress=False, live_plot=False)
    assert (t.amp, t.channels_last) == (False, True) and asked == [None, False]
    t = run.train_model("cbam", profile=tiny, data=data, device="cpu", progress=False, live_plot=False,
                        amp=False, channels_last=False)
    assert (t.amp, t.channels_last) == (False, False) and len(asked) == 2  # told, so not timed
    t = run.train_model("cbam", profile=tiny, data=data, device="cpu", progress=False, live_plot=False, amp=False)
    assert (t.amp, t.channels_last) == (False, True) and asked[2:] == [False]  # float32 fixed, the layout timed
    quick = run.train_model("cbam", profile="quick", data=data, device="cpu", progress=False, live_plot=False)
    assert (quick.amp, quick.channels_last) == (False, False) and len(asked) == 3


def test_train_model_accelerates_and_keeps_freed_memory_on_the_cpu(standin, monkeypatch):
    """train_model trains through the speed layer (fast.accelerate), which asks the allocator to
    keep what a step frees on the CPU (see fast.cpu.keep_freed_memory); a Trainer alone does not."""
    import cbam_course.fast.cpu as cpu
    from cbam_course.fast.modules import FastCBAM

    calls = []
    monkeypatch.setattr(cpu, "keep_freed_memory", lambda: calls.append(1) or True)
    _trainer(standin)
    assert calls == []
    t = train_model("cbam", profile="quick", data=standin, device="cpu", max_steps=1, progress=False,
                    live_plot=False)
    assert calls == [1]
    assert all(type(m) is FastCBAM for m in t.model.attention_modules())
