"""Training speaks the learner's language: with CBAM_COURSE_LANG=zh the first screen of lessons 05
and 06, the missing-CIFAR-10 error and the run store's errors arrive in Chinese, with every path,
address and command still in them; and the language never changes which stored run a lesson uses."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cbam_course.i18n import LANG_ENV, tr
from cbam_course.train import cifar10 as C
from cbam_course.train import prepare as prepare_module
from cbam_course.train import recipes as recipes_module
from cbam_course.train.data import make_standin
from cbam_course.train.prepare import plan_lesson
from cbam_course.train.recipes import PROFILES, describe_mode
from cbam_course.train.store import MANIFEST_NAME, RunStore, RunStoreError, make_spec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import i18n as catalogs  # noqa: E402  (tools/i18n.py)


def chinese(text: str) -> int:
    """How many CJK characters ``text`` holds."""
    return sum("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv(LANG_ENV, "zh")


@pytest.fixture
def fixed_estimate(monkeypatch):
    """A training run "costs" 100 s in every profile, so the first screen's numbers are known (and
    nothing is timed)."""
    for module in (recipes_module, prepare_module):
        monkeypatch.setattr(module, "estimate_seconds", lambda profile, device=None: 100.0)


def test_the_first_screen_is_in_chinese_and_keeps_the_names_and_the_switch(zh, fixed_estimate):
    text = describe_mode(PROFILES["laptop"], trainings=2)
    first, others, switch = text.splitlines()
    assert first.startswith("模式：'laptop'：真实的 CIFAR-10，本课共 2 次训练") and "约 3 分钟" in first
    assert "'quick' 约 3 分钟" in others and "'full' 约 3 分钟" in others and chinese(others) > 10
    assert "CBAM_COURSE_PROFILE=quick|laptop|full" in switch and "`make lab PROFILE=laptop`" in switch
    assert "`%env CBAM_COURSE_PROFILE=laptop`" in switch and chinese(switch) > 20
    assert "Mode" not in text and "this lesson" not in text


def test_a_lesson_plan_without_cifar10_says_so_in_chinese(zh, fixed_estimate, tmp_path):
    plan = plan_lesson(5, "laptop", data_root=tmp_path / "no-data", store=tmp_path / "runs")
    lines = plan.describe().splitlines()
    assert lines[0].startswith("模式：'laptop'") and len(lines) == 4
    assert "这台机器上还没有 CIFAR-10" in lines[3] and "运行存储（run store）" in lines[3]
    assert not (tmp_path / "no-data").exists()


def test_lesson_06s_seed_note_is_in_chinese_with_its_command(zh, fixed_estimate, tmp_path):
    plan = plan_lesson(6, "quick", seeds=[0], store=RunStore(tmp_path / "runs", tmp_path / "fallback"))
    note = plan.describe().splitlines()[-1]
    assert note.startswith("一个随机种子（0）") and "每个种子约需 8 分钟" in note and "`python -m cbam_course prepare --profile quick --seeds 3`" in note


def test_a_missing_cifar10_is_explained_in_chinese_with_the_address_the_file_and_the_folder(zh, tmp_path):
    with pytest.raises(C.DatasetNotFoundError) as info:
        C.load_cifar10(tmp_path / "data", download=False)
    message = str(info.value)
    assert chinese(message) > 40 and "could not be downloaded" not in message
    folder = (tmp_path / "data").resolve()
    for needed in (C.CIFAR10_URL, C.CIFAR10_ARCHIVE, str(folder), str(folder / C.CIFAR10_ARCHIVE),
                   "CBAM_COURSE_DATA", "CBAM_COURSE_QUICK=1"):
        assert needed in message, needed


def test_a_damaged_stored_run_is_explained_in_chinese_with_what_to_do(zh, tmp_path):
    spec = make_spec("cbam", profile="quick", data=make_standin(16, 8))
    store = RunStore(tmp_path / "runs", tmp_path / "fallback")
    folder = store.folder(spec)
    folder.mkdir(parents=True)
    (folder / MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(RunStoreError) as info:
        store.find(spec)
    message = str(info.value)
    assert message.startswith(f"清单 {folder / MANIFEST_NAME} 无法解析") and "不可信" in message
    assert f"删除文件夹 {folder} 后重新运行" in message
    assert "`python -m cbam_course prepare --profile quick`" in message


def test_english_stays_the_default(monkeypatch, tmp_path, fixed_estimate):
    monkeypatch.delenv(LANG_ENV, raising=False)
    with pytest.raises(C.DatasetNotFoundError, match="could not be downloaded"):
        C.load_cifar10(tmp_path / "data", download=False)
    assert describe_mode(PROFILES["quick"], trainings=2).startswith("Mode: 'quick': the generated stand-in")


def test_profiles_keep_their_english_values_and_are_shown_in_chinese(zh):
    laptop = PROFILES["laptop"]
    assert laptop.description == "Real CIFAR-10 on a laptop CPU in about ten minutes, at width 32."
    assert chinese(tr(laptop.description)) and chinese(tr(laptop.expected_time))
    assert "docs/performance.md" in tr(laptop.expected_accuracy) and "80.5-80.8%" in tr(laptop.expected_accuracy)


def test_the_language_does_not_change_which_stored_run_a_lesson_uses(monkeypatch):
    data = make_standin(16, 8)
    monkeypatch.delenv(LANG_ENV, raising=False)
    english = make_spec("cbam", profile="quick", data=data).run_id
    monkeypatch.setenv(LANG_ENV, "zh")
    assert make_spec("cbam", profile="quick", data=make_standin(16, 8)).run_id == english


def test_the_figures_titles_and_labels_are_in_the_catalog():
    train = catalogs.extract()["train"]
    for text in ("Confusion matrix", "predicted class", "Training loss per iteration", "Validation"):
        assert any(where.startswith("cbam_course/train/") for where in train[text]), text


def test_figures_are_labelled_in_chinese_where_a_chinese_font_exists(zh, monkeypatch):
    import matplotlib.pyplot as plt

    from cbam_course import i18n
    from cbam_course.train import figures

    monkeypatch.setattr(i18n, "_FONT", [None])   # no CJK font: English, never empty boxes
    ax = figures.plot_budget_comparison({"same epochs": {"cbam": [80.0, 81.0]}})
    assert ax.get_title() == "Test accuracy under the same budget" and ax.get_xlabel() == "budget"
    monkeypatch.setattr(i18n, "_FONT", ["Noto Sans CJK SC"])  # as if the machine had one
    ax = figures.plot_budget_comparison({"same epochs": {"cbam": [80.0, 81.0]}})
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("相同预算下的测试准确率", "预算", "测试准确率（%）")
    assert ax.get_legend().get_title().get_text() == "注意力"
    plt.close("all")
