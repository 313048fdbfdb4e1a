"""Every notebook is committed clean and the course has all its lessons in all three folders, in both
editions (the Chinese one in <folder>/zh/, built by tools/translate.py)."""
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
LESSONS = (
    "01_concepts", "02_channel_attention", "03_spatial_attention",
    "04_cbam", "05_cifar10_training", "06_se_comparison",
)
# Optional appendices: in notebooks/ only, tested by nbval like the lessons, no exercise.
APPENDICES = ("04a_appendix_official_and_timm",)
EDITIONS = ("", "zh")
EDITION_FOLDERS = [f"{f}/{e}".rstrip("/") for f in FOLDERS for e in EDITIONS]
NOTEBOOKS = sorted(p for f in EDITION_FOLDERS for p in (ROOT / f).glob("*.ipynb"))
# What each edition's lessons must say: objectives, summary, references, and where the exercise is.
SECTIONS = {"": ("objectives", "summary", "references"), "zh": ("学习目标", "小结", "参考文献")}


@pytest.mark.parametrize("folder", EDITION_FOLDERS)
def test_every_lesson_is_in_every_folder(folder):
    present = {p.stem for p in (ROOT / folder).glob("*.ipynb")}
    expected = set(LESSONS) | (set(APPENDICES) if folder.startswith("notebooks") else set())
    assert present == expected, f"{folder}/ should hold exactly {sorted(expected)}, has {sorted(present)}"


def test_appendices_sort_after_their_lesson():
    for name in APPENDICES:
        lesson = next(stem for stem in LESSONS if stem[:2] == name[:2])
        assert sorted([lesson, name]) == [lesson, name], f"{name} should sort after {lesson}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"cells {dirty} carry outputs: clear them before committing (Jupyter: Edit > Clear Outputs of All Cells)"


@pytest.mark.parametrize("path", sorted(p for e in EDITIONS for p in (ROOT / "notebooks" / e).glob("*.ipynb")),
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_lesson_has_objectives_summary_and_references(path):
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown").lower()
    edition = "zh" if path.parent.name == "zh" else ""
    last = {"": "no exercise", "zh": "没有练习"}[edition] if path.stem in APPENDICES else f"exercises/{edition}".rstrip("/") + "/"
    for needed in (*SECTIONS[edition], last):
        assert needed in text, f"{path.relative_to(ROOT)} has no '{needed}' in its text"
