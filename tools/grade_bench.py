"""Time the grader on a generated class: ``python tools/grade_bench.py [--learners 30] [--jobs 2] [--mixed]``.

Each learner hands in exercise 02 (``exercises/02_channel_attention.ipynb``) with the solution's
answers, so every check runs in full (``--mixed``: a third right, a third with a wrong channel
attention, the max branch dropped, and a third untouched); the grader runs every notebook in its
sandboxed kernel and judges every check in its own process. Prints the seconds per notebook,
probe and judge included (docs/performance.md, "Grading a class", records the results with the
machine).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cbam_course.fast.cpu import machine_line  # noqa: E402
from cbam_course.grading.grade import grade, summary_line  # noqa: E402
from cbam_course.grading.sandbox import status  # noqa: E402

STEM = "02_channel_attention"
AVG_ONLY = '''import torch
import torch.nn as nn

class ChannelAttention(nn.Module):
    def __init__(self, in_channels, ratio=16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_channels, in_channels // ratio, bias=False), nn.ReLU(),
                                nn.Linear(in_channels // ratio, in_channels, bias=False))

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean(dim=(2, 3))))[:, :, None, None]
'''


def make_class(folder: Path, learners: int, mixed: bool = False) -> None:
    """``learners`` folders, each with exercise 02: right, or with ``mixed`` right, wrong or
    untouched in turn."""
    solution = nbformat.read(ROOT / "solutions" / f"{STEM}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: "\n".join(line for line in c.source.splitlines() if "SOLUTION" not in line)
               for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    for i in range(learners):
        nb = nbformat.read(ROOT / "exercises" / f"{STEM}.ipynb", as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            kind = i % 3 if mixed else 0
            if kind < 2 and grade_id in answers:
                cell.source = answers[grade_id]
                if kind == 1 and "class ChannelAttention" in cell.source:
                    cell.source = AVG_ONLY
        (folder / f"learner{i:02d}").mkdir(parents=True)
        nbformat.write(nb, folder / f"learner{i:02d}" / f"{STEM}.ipynb")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--mixed", action="store_true", help="a third right, a third wrong, a third untouched")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        submitted, out = Path(tmp) / "submitted", Path(tmp) / "out" / "grades.csv"
        make_class(submitted, args.learners, args.mixed)
        print(f"machine: {machine_line(full=True)}")
        print(f"sandbox: {status()[1]}")
        start = time.perf_counter()
        summary = grade(submitted, out, jobs=args.jobs, progress=False)
        wall = time.perf_counter() - start
        print(summary_line(summary))
        print(f"grading: {wall / args.learners:.2f} s per notebook ({args.learners} notebooks, --jobs {args.jobs}, "
              f"{wall:.1f} s in all, probe and judge included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
