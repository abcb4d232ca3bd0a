"""What C libraries print on the process's stderr (libjpeg, libpng), kept off the terminal and handed back."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def held_back_stderr() -> Iterator[list[str]]:
    """What C libraries print to the process's stderr inside the block (libjpeg's "Premature end of
    JPEG file", libpng's "Read Error"), kept off the terminal and handed back as lines once it ends:
    the caller says it in one line of its own. (Python's own writes are flushed before and after.)"""
    lines: list[str] = []
    if sys.stderr is None:  # (pythonw, or started with stderr closed): nothing to keep anything off
        yield lines
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines += [line for line in held.read().decode(errors="replace").splitlines() if line.strip()]
