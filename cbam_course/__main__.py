"""Command line: ``python -m cbam_course {train,prepare,bench,grade} ...``.

- ``train``: train a network on CIFAR-10 or the stand-in (``cbam_course/train/cli.py``);
- ``prepare``: train every run lessons 05 and 06 show into the run store (``cbam_course/train/prepare.py``);
- ``bench``: the benchmarks behind the speed claims (``cbam_course/bench/``);
- ``grade``: grade a class's exercise notebooks into a gradebook (``cbam_course/grading/grade.py``).

Each command is imported only when asked for; ``--help`` after one lists its options.
"""
from __future__ import annotations

import sys

USAGE = "usage: python -m cbam_course {train,prepare,bench,grade} ...  (add --help after a command for its options)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        from .train.cli import train_main

        return train_main(rest)
    if command == "prepare":
        from .train.prepare import prepare_main

        return prepare_main(rest)
    if command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if command == "grade":
        from .grading.grade import grade_main

        return grade_main(rest)
    print(f"error: unknown command {command!r}. {USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
