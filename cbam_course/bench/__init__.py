"""The benchmarks behind the course's speed claims: ``python -m cbam_course bench NAME [options]``.

They sit above the speed layer and training, and use both:

- ``speed``: ``overhead``, ``loop`` and ``pipeline``, what the speed layer (``cbam_course.fast``)
  buys, each measured against its baseline in the same process;
- ``profiles``: ``laptop`` and ``full``, a run profile end to end on real CIFAR-10, through the
  training command line's own options and path.

``docs/performance.md`` holds the results and the exact commands that produced them;
``tools/gpu_bench.sh`` runs the GPU measurements in one go on a lent machine.
"""
from __future__ import annotations

import sys

from . import profiles, speed

__all__ = ["main"]

COMMANDS = {**speed.COMMANDS, **profiles.COMMANDS}
USAGE = (f"usage: python -m cbam_course bench {{{','.join(COMMANDS)}}} [options]  "
         "(--help after one for its options)")


def main(argv: list[str] | None = None) -> int:
    """``python -m cbam_course bench ...``: run one benchmark; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        if argv:
            print(USAGE + "\n\n" + "\n\n".join(m.__doc__.split("\n\n", 1)[1] for m in (speed, profiles)))
            return 0
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown benchmark {argv[0]!r}. {USAGE}", file=sys.stderr)
        return 2
    return int(COMMANDS[argv[0]](argv[1:]) or 0)
