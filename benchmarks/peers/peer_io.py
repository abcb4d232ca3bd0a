"""What the peer scripts share: the `run_tracker.py`-like command line, frames, and the CSV writer.

Imports only cv2, numpy and `kaggle_framing` (NumPy only), so it runs in any peer's venv.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for kaggle_framing
from kaggle_framing import COLUMNS  # noqa: E402

# As tracker/app/sinks.py writes it (`score` left empty: a peer has no presence score).
CSV_HEADER = ["source", "frame", "face", "x", "y", "w", "h", *COLUMNS, "time", "score"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}



class Frame(NamedTuple):
    source: str  # the video, or the image's path
    index: int
    image: np.ndarray  # BGR
    timestamp: float | None  # seconds; None for a still image


# A face as a peer reports it: box (x, y, w, h) and its 15 Kaggle points (15, 2), in frame pixels.
Face = tuple[tuple[float, float, float, float], np.ndarray]
Locate = Callable[[Frame], list[Face]]


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--video", metavar="PATH")
    src.add_argument("--image", metavar="PATH_OR_DIR")
    src.add_argument("--self-check", action="store_true", help="load the model and exit (install check)")
    ap.add_argument("--csv", metavar="PATH")
    ap.add_argument("--no-display", action="store_true", help="accepted for run_tracker.py parity; never displays")
    return ap


def frames(args: argparse.Namespace) -> Iterator[Frame]:
    """The input's frames, numbered as run_tracker.py numbers them."""
    if args.video:
        capture = cv2.VideoCapture(args.video)
        if not capture.isOpened():
            raise SystemExit(f"error: {args.video}: not a readable video")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if np.isfinite(fps) and 1 <= fps <= 1000 else 30.0
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(args.video, index, image, index / fps)
            index += 1
        capture.release()
        return
    path = Path(args.image)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    index = 0  # images read, as run_tracker.py counts them
    for file in files:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is not None:
            yield Frame(str(file), index, image, None)
            index += 1


def run(args: argparse.Namespace, locate: Locate) -> int:
    """Every frame through `locate`, rows to the CSV; prints the frame count as run_tracker.py does."""
    out = open(args.csv, "w", newline="") if args.csv else None
    writer = csv.writer(out, lineterminator="\n") if out else None
    if writer:
        writer.writerow(CSV_HEADER)
    count = detections = 0
    t = time.perf_counter()
    for frame in frames(args):
        faces = locate(frame)
        count += 1
        detections += len(faces)
        if writer:
            for face_id, (box, points) in enumerate(faces):
                when = "" if frame.timestamp is None else f"{frame.timestamp:.3f}"
                writer.writerow([frame.source, frame.index, face_id, *(f"{v:.1f}" for v in box),
                                 *(f"{v:.2f}" for v in np.asarray(points).reshape(-1)), when, ""])
    if out:
        out.close()
    print(f"{count} frames, {detections} face detections ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    return 0


def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    """The bounding box of a point set, for peers that report points but no box."""
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)
