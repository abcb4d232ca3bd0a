"""The one way the project says something is off but carries on: a `warning: ...` line on stderr."""
from __future__ import annotations

import sys


def warn(message: str) -> None:
    # One write, newline included: print's separate write of the newline let a warning from the
    # outputs' thread and one from the tracker's share a line.
    print(f"warning: {message}\n", end="", file=sys.stderr, flush=True)
