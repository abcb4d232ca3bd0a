"""What the command-line tests share: running `run_tracker.py` headless and skipping without data."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def require(path: Path) -> Path:
    """`path`, or skip the test when the shared data it names is not here."""
    if not path.exists():
        pytest.skip(f"not found: {path}")
    return path


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str


def headless_env() -> dict[str, str]:
    """The caller's environment without a display: never open a window in a test."""
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def run_tracker(*args: str | Path, timeout: float = 600) -> Run:
    proc = subprocess.run(
        [sys.executable, "run_tracker.py", *map(str, args)],
        cwd=ROOT, env=headless_env(), capture_output=True, text=True, timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def error_line(run: Run) -> str:
    """The failed run's one `error: ...` line, the last thing on stderr (which may hold library
    warnings before it); never a traceback."""
    assert run.rc != 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], run.stderr
    return errors[0]


def write_clip(path: Path, source: Path, frames: int, fourcc: str = "mp4v") -> Path:
    """The first `frames` frames of the video `source`, re-encoded into `path` (25 fps)."""
    import cv2

    capture = cv2.VideoCapture(str(require(source)))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (frame.shape[1], frame.shape[0]))
            assert writer.isOpened()
        writer.write(frame)
    writer.release()
    capture.release()
    return path
