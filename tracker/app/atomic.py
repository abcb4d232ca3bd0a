"""Files that appear whole or not at all: written under a hidden temporary name beside their final
one and renamed into place, in one atomic step, once complete and on disk.

Standard library only: a folder run's driver (tracker/app/batch.py) uses it without loading OpenCV or torch.
"""
from __future__ import annotations

import os
from pathlib import Path


def partial(path: Path) -> Path:
    """Where `path` is written until it is complete: hidden, beside it, with its suffix (the video
    writer picks its codec by the suffix)."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def commit(temporary: Path, final: Path) -> None:
    """Make `final` the complete file `temporary`: on disk first, then renamed in one step."""
    with temporary.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(temporary, final)


def kept(path: Path) -> Path:
    """Where a run that failed midway keeps what it wrote of `path`: visible, beside it, under a name
    that says it is incomplete (`out.csv` -> `out.partial.csv`)."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def temporary(path: Path) -> Path | None:
    """Where to write `path` until it is complete: `partial(path)`, or None (in place) where `path` is
    an existing file that is not a regular one (/dev/null, a FIFO): renaming over it would replace it."""
    return None if path.exists() and not path.is_file() else partial(path)
