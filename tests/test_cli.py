"""``python -m cbam_course train``: trains, resumes to more epochs, refuses damaged and foreign
checkpoints and missing data with one line and no traceback. Quick mode (the stand-in)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error

import pytest

from cbam_course.__main__ import main


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CBAM_COURSE_QUICK": "1"}
    return subprocess.run([sys.executable, "-m", "cbam_course", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_train_resume_and_refuse_a_damaged_checkpoint(tmp_path):
    out = tmp_path / "run"
    common = ["--attention", "cbam", "--quick", "--width", "16", "--out", str(out), "--no-progress"]
    first = _run("train", "--epochs", "1", *common)
    assert first.returncode == 0, first.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1]
    assert list(out.glob("*.pt")) == [out / "checkpoint.pt"]

    second = _run("train", "--epochs", "2", "--resume", *common)
    assert second.returncode == 0, second.stderr
    grown = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in grown] == [1, 2]
    assert grown[0] == metrics["epochs"][0]  # the first epoch's record is kept as it was
    assert set(grown[1]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}

    blob = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(blob[: len(blob) // 3])
    damaged = _run("train", "--epochs", "3", "--resume", *common)
    assert damaged.returncode != 0
    assert "Traceback" not in damaged.stderr
    lines = [line for line in damaged.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "damaged" in lines[0] and "checkpoint.pt" in lines[0]


def test_foreign_checkpoint_and_missing_checkpoint_exit_nonzero(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["train", "--quick", "--width", "16", "--out", out, "--no-progress", "--max-steps", "2"]
    assert main(base + ["--attention", "se", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(base + ["--attention", "none", "--epochs", "2", "--resume"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "attention='se'" in err[0] and "attention='none'" in err[0]
    assert main(["train", "--quick", "--out", str(tmp_path / "empty"), "--resume", "--epochs", "1"]) == 1
    assert "No checkpoint" in capsys.readouterr().err


def test_missing_data_gives_the_data_message(tmp_path, capsys, monkeypatch):
    import torchvision.datasets.utils as U

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(U, "download_and_extract_archive", no_network)
    code = main(["train", "--profile", "laptop", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o"),
                 "--epochs", "1", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cifar-10-python.tar.gz" in err[0] and "https://www.cs.toronto.edu" in err[0]


def test_usage_and_unknown_command(capsys):
    assert main([]) == 2
    assert main(["fly"]) == 2
    assert "unknown command" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--attention", "transformer", "--out", "x"])


def test_resuming_with_the_other_data_says_so_before_loading_any(tmp_path, capsys, monkeypatch):
    """A quick run resumed without --quick (and a CIFAR-10 run resumed with it) ends with one line
    that says which kind of run it was, not with the data error: no data is looked for."""
    import torch
    import torchvision.datasets.utils as U

    from cbam_course.train import run as run_module

    out = tmp_path / "run"
    base = ["train", "--width", "16", "--out", str(out), "--no-progress", "--max-steps", "2"]
    assert main(base + ["--quick", "--epochs", "1"]) == 0
    capsys.readouterr()

    def no_data(*args, **kwargs):
        raise AssertionError("the data must not be looked for")

    monkeypatch.setattr(U, "download_and_extract_archive", no_data)
    monkeypatch.setattr(run_module, "load_cifar10", no_data)
    monkeypatch.delenv("CBAM_COURSE_QUICK", raising=False)
    monkeypatch.delenv("CBAM_COURSE_PROFILE", raising=False)
    for how in ([], ["--profile", "laptop"]):  # the machine's profile, or one named
        assert main(base + how + ["--epochs", "2", "--resume", "--data", str(tmp_path / "nodata")]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "this run was a quick run (the generated stand-in)" in err[0], err
        assert "add --quick to resume it" in err[0] and "another folder" in err[0]

    # the reverse: a run on CIFAR-10 (its checkpoint says so) resumed with --quick
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    ckpt["config"].update(profile="laptop", is_standin=False)
    torch.save(ckpt, out / "checkpoint.pt")
    assert main(base + ["--quick", "--epochs", "2", "--resume"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "real CIFAR-10" in err[0] and "without --quick (--profile laptop)" in err[0], err

    # the same kind of run resumes as before
    ckpt["config"].update(profile="quick", is_standin=True)
    torch.save(ckpt, out / "checkpoint.pt")
    assert main(base + ["--quick", "--epochs", "2", "--resume"]) == 0
