"""A run store for timing lessons 05 and 06 only: every run of a profile, each trained a few steps.

    python tools/timing_store.py --profile laptop --data /path/to/cifar10 --store /tmp/timing-runs
    python tools/measure_runtimes.py --mode laptop --folders notebooks --only 05 06 \
        --data /path/to/cifar10 --store /tmp/timing-runs --note "timing-only store (tools/timing_store.py)"

What a lesson does with a prepared store (load each checkpoint, evaluate it on the 10,000 test
images, draw the curves, the confusion matrix and the attention maps) costs the same whether the
run trained for ten minutes or for four steps. A real laptop store takes hours on 2 cores
(``python -m cbam_course prepare --profile laptop --seeds 3``); this one takes minutes, so the
store-backed times can be measured on any machine. Its runs carry the profile's identities but
are NOT trained: the accuracies the lessons then show are meaningless. Never hand it to a class.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cbam_course.train import trainer  # noqa: E402
from cbam_course.train.prepare import prepare_main  # noqa: E402
from cbam_course.train.recipes import PROFILES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="laptop", choices=list(PROFILES))
    parser.add_argument("--data", required=True, help="the CIFAR-10 folder the lessons will use")
    parser.add_argument("--store", required=True, help="where to write the timing-only store")
    parser.add_argument("--steps", type=int, default=4, help="training steps per run (default 4)")
    args = parser.parse_args(argv)

    fit = trainer.Trainer.fit

    def short_fit(self, epochs=None, *, time_budget=None, max_steps=None):
        return fit(self, epochs, time_budget=None, max_steps=args.steps)

    trainer.Trainer.fit = short_fit  # this process only: the runs stop after --steps steps
    return prepare_main(["--profile", args.profile, "--data", args.data, "--store", args.store, "--no-progress"])


if __name__ == "__main__":
    sys.exit(main())
