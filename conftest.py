"""The order in which pytest hands files to its two workers (``make test``, ``make unit``, ``make notebooks``).

pytest-xdist (``--dist loadfile --no-loadscope-reorder``) gives each worker one whole file at a
time, in the order of the collection. This hook sets that order:

- the longest files first (:data:`LONGEST_FIRST`, longest first, as measured on a fresh clone), so
  that at the end neither worker waits long for the other;
- the Chinese edition's notebooks last, after the English ones. Both editions' lessons 05 and 06
  train the same runs; side by side, the Chinese lesson waited for the English one's lock on each
  run and then loaded it, so one worker sat idle. Afterwards it loads them at once.

The order changes what runs when, never what runs: every file still runs, whole, on one worker.
A file missing from the list (renamed, or not in this run) only loses its place.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent

# Over 15 s each on a fresh clone in CI (2 cores, AMD EPYC; CONTRIBUTING, "Tests and CI").
LONGEST_FIRST = (
    "tests/test_store.py",
    "tests/test_grade_attacks.py",
    "tests/test_grade.py",
    "tests/test_training.py",
    "tests/test_cli.py",
    "notebooks/06_se_comparison.ipynb",
    "notebooks/05_cifar10_training.ipynb",
    "tests/test_bench.py",
    "solutions/06_se_comparison.ipynb",
)


def _rank(path: str) -> tuple[int, int]:
    if path in LONGEST_FIRST:
        return 0, LONGEST_FIRST.index(path)
    return (2 if "/zh/" in f"/{path}" else 1), 0


def pytest_collection_modifyitems(items) -> None:
    """Sort by file as above; a stable sort keeps each file's own order (a notebook's cells run in
    order) and the collection's order among files of the same rank."""
    def key(item):
        path = Path(str(item.path)).resolve()
        return _rank(path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.as_posix())
    items.sort(key=key)
