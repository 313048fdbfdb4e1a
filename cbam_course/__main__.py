"""Command line: ``python -m cbam_course ...`` (filled in by the training and benchmark work)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("usage: python -m cbam_course {train,bench} ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
