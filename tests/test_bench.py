"""Smoke tests of the benchmarks (tiny sizes): they run, print what docs/performance.md quotes,
and compare like with like. No timing is asserted: speed claims come from the full runs."""
import re

import pytest
import torch

import cbam_course as cc
import cbam_course.bench as bench
from cbam_course import day50, measure
from cbam_course.bench import speed


def test_the_benchmarks_baseline_is_the_day50_code():
    """The pipeline's baseline model is the Day 50 lesson's own CBAM_CNN (cbam_course/day50.py), not a copy,
    and the benchmarks time with the course's one interleaved timer."""
    assert speed.Day50CNN is day50.CBAM_CNN
    assert speed.interleave is measure.interleave


def test_course_network_matches_day50():
    assert speed.day50_output_difference(width=16, batch=2) <= 1e-5


def test_overhead_prints_table_and_last_line(capsys):
    assert bench.main(["overhead", "--widths", "16", "--batch", "4", "--rounds", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("CBAM overhead:")
    assert any(line.startswith("machine:") for line in out)
    assert any("outputs equal the Day 50 lesson's CBAM_CNN" in line and "(ok," in line for line in out)
    row = next(line for line in out if line.startswith("eager NCHW"))
    assert re.search(r"\b16\b", row) and row.count("x") >= 2  # width, ours and the plain formula's overhead
    assert re.fullmatch(r"overhead: \d+\.\d\dx \(eager NCHW, width 16\)", out[-1])


def test_interleaved_times_turns_of_consecutive_steps():
    """Each model runs ``block`` steps in a row per turn; the first of each turn is not timed."""
    calls = []
    times = measure.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               rounds=4, warmup=1, block=3)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}
    assert calls == ["a", "b"] + ["a"] * 3 + ["b"] * 3 + ["a"] * 3 + ["b"] * 3
    calls.clear()
    measure.interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=2, warmup=0)
    assert calls == ["a", "b", "a", "b"]  # block 1: alternate every step, all timed


def test_overhead_says_how_the_allocator_is_set(capsys):
    for extra, says in ((["--default-malloc"], "as the C library sets it"), ([], "freed memory kept")):
        assert bench.main(["overhead", "--widths", "16", "--batch", "2", "--rounds", "1", "--threads", "1",
                           "--block", "2"] + extra) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert "in turns of 2 steps per model" in out[0]
        assert any(line.startswith("allocator: ") and says in line for line in out)


def test_loop_prints_time_and_page_faults_per_step(capsys):
    assert bench.main(["loop", "--attention", "none", "--width", "16", "--batch", "2", "--steps", "2",
                       "--threads", "1"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"none, width 16, batch 2: \d+\.\d ms per step \(median of 2\), page faults per "
                        r"step: median \d+, most \d+", last)
    seconds, faults = speed.measure_loop("cbam", width=16, batch=2, steps=3)
    assert len(seconds) == len(faults) == 3 and min(seconds) > 0 and min(faults) >= 0


@pytest.mark.parametrize("amp", ["off", "on"])
def test_pipeline_prints_speedup_on_last_line(capsys, amp):
    code = bench.main(["pipeline", "--steps", "2", "--chunk", "1", "--batch", "8", "--width", "16",
                       "--n-images", "64", "--amp", amp] + (["--workers", "0"] if amp == "on" else []))
    assert code == 0
    text = capsys.readouterr().out
    out = text.strip().splitlines()
    day50_rate = float(re.search(r"day50 pipeline:\s+([\d.]+) images/s", text).group(1))
    fp32_rate = float(re.search(r"course pipeline, float32:\s+([\d.]+) images/s", text).group(1))
    bf16 = re.search(r"course pipeline, bfloat16:\s+([\d.]+) images/s", text)
    assert (bf16 is not None) == (amp == "on")
    assert day50_rate > 0 and fp32_rate > 0
    best = float(bf16.group(1)) if bf16 else fp32_rate
    m = re.fullmatch(r"speedup: (\d+\.\d\d)x", out[-1])
    assert m and abs(float(m.group(1)) - best / day50_rate) <= 0.01 + 0.02 * best / day50_rate  # printed rates are rounded


def test_day50_transform_and_batched_augmentation_agree_without_randomness():
    """Same maths: with the crop offset at the centre and no flip, the Day 50 lesson's PIL transforms and
    the course's normalisation give the same tensor."""
    from PIL import Image
    import torchvision.transforms as T

    from cbam_course.train.data import CIFAR10_MEAN, CIFAR10_STD, normalize

    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    pil = Image.fromarray(img.permute(1, 2, 0).numpy())
    day50_tensor = T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])(pil)
    torch.testing.assert_close(normalize(img[None])[0], day50_tensor, atol=1e-6, rtol=1e-6)


def test_unknown_benchmark_is_an_error(capsys):
    assert bench.main(["nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert bench.main([]) == 2


def test_laptop_quick_runs_end_to_end(capsys, tmp_path):
    assert bench.main(["laptop", "--quick", "--attention", "cbam", "--time-budget", "60",
                       "--out", str(tmp_path), "--set", "batch_size=64"]) == 0
    out = capsys.readouterr().out
    assert "generated stand-in" in out.lower() or "stand-in" in out
    assert "batch_size=64" in out.splitlines()[0]
    assert re.search(r"test accuracy without TTA: \d+\.\d\d%", out)
    assert re.search(r"wall time: \d+\.\d s of the 60 s budget \(\d+\.\d% used\)", out)
    assert (tmp_path / "metrics.json").is_file()
    assert bench.main(["laptop", "--quick", "--set", "batch_sise=64"]) == 2
    assert "use FIELD=VALUE with one of the recipe's fields" in capsys.readouterr().out


def test_full_quick_reports_when_the_target_was_reached(capsys):
    """``bench full`` (the GPU profile's benchmark) runs anywhere; the target line names the first
    epoch whose validation accuracy reached it, and the epoch list shows where that came from."""
    assert bench.main(["full", "--quick", "--device", "cpu", "--target", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Full profile: cbam") and "no time budget" in out.splitlines()[0]
    assert re.search(r"target 0\.00% first reached \(val\) at epoch 1, \d+ s wall", out)
    epochs = re.findall(r"  epoch (\d+): train acc [\d.]+%, val acc ([\d.]+)%", out)
    assert [e for e, _ in epochs] == ["1", "2"]
    assert re.search(r"test accuracy without TTA: \d+\.\d\d%", out)

    assert bench.main(["full", "--quick", "--device", "cpu", "--target", "101"]) == 0
    out = capsys.readouterr().out
    best = max(float(acc) for _, acc in re.findall(r"  epoch (\d+): train acc [\d.]+%, val acc ([\d.]+)%", out))
    assert f"target 101.00% not reached on val (best {best:.2f}%)" in out


def test_profile_bench_says_so_when_no_epoch_fits_the_budget(capsys):
    assert bench.main(["laptop", "--quick", "--time-budget", "0.000001"]) == 1
    assert "error: no epoch fits in the 0 s budget" in capsys.readouterr().out


def test_overhead_can_add_se(capsys):
    assert bench.main(["overhead", "--widths", "16", "--batch", "2", "--rounds", "1", "--threads", "1", "--se"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("config"))
    assert header.split()[-2:] == ["se", "overhead"]
    row = next(line for line in out if line.startswith("eager NCHW"))
    assert row.count("x") == 3  # cbam, the plain formula, se


def test_overhead_can_add_the_pytorch_fused_step(capsys):
    """--pytorch-fused times CBAM without numba's loops (accelerate(model, loops=False)) in the same
    run; channels_last has no such column. Where numba is missing both columns time the same step."""
    from cbam_course.fast import accelerate
    from cbam_course.fast.modules import FastCBAM
    from cbam_course.models import AttentionCNN

    assert bench.main(["overhead", "--widths", "16", "--batch", "2", "--rounds", "1", "--threads", "1",
                       "--pytorch-fused", "--channels-last"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(line for line in out if line.startswith("config"))
    assert header.split()[-2:] == ["ms", "overhead"] and "pytorch-fused" in header
    row = next(line for line in out if line.startswith("eager NCHW"))
    assert row.count("x") == 3  # cbam, the plain formula, the PyTorch fused step
    row = next(line for line in out if line.startswith("eager channels_last"))
    assert row.split()[-2:] == ["-", "-"]
    r = speed.measure_overhead(16, batch=2, rounds=1, with_plain=False, with_pytorch_fused=True)
    assert set(r) == {"none", "cbam", "cbam-pytorch"}
    # the benchmark's switch stays in its own models: other models keep the plain class, and
    # accelerate() still turns the loops on
    assert FastCBAM.use_loops is True and type(AttentionCNN(width=16).attention_modules()[0]) is cc.CBAM
    assert all(m.use_loops for m in accelerate(AttentionCNN(width=16), keep_memory=False).attention_modules())


def test_overhead_takes_a_device(capsys):
    assert bench.main(["overhead", "--widths", "16", "--batch", "2", "--rounds", "1", "--threads", "1",
                       "--device", "cpu"]) == 0
    assert "on cpu" in capsys.readouterr().out.splitlines()[0]
    missing = "cuda" if not torch.cuda.is_available() else "nope"
    for command in (["overhead", "--widths", "16"], ["full", "--quick"]):
        assert bench.main(command + ["--device", missing]) == 2
        assert f"error: Device {missing!r} is not available here" in capsys.readouterr().out
