"""Where results go: the keypoints CSV, the annotated video, annotated images.

Every writer is opened (and so checked) before the first frame is processed, and leaves a complete
file when closed early (Ctrl-C, SIGTERM, a failing input): CSV rows are written whole and flushed
per frame, and the video container is finalised on close.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import COLUMNS
from tracker.tracker import Face

CSV_HEADER = ["source", "frame", "face", "x", "y", "w", "h", *COLUMNS]


class OutputError(RuntimeError):
    """An output that cannot be written; raised before any work is done."""


def refuse_input(path: Path, inputs: list[Path]) -> None:
    """An output must never overwrite an input, however the two paths are spelled."""
    for source in inputs:
        if source.exists() and path.exists() and path.resolve() == source.resolve():
            raise OutputError(f"{path}: is also the input; choose another output path")


def check_writable(path: Path, inputs: list[Path]) -> None:
    """Fail early: the folder must exist and be writable, and the output must not be an input."""
    refuse_input(path, inputs)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{path}: cannot write there (permission denied)")


class CsvSink:
    """`source,frame,face,x,y,w,h` + the 30 Kaggle columns, one row per face per frame."""

    def __init__(self, path: str | Path, inputs: list[Path]) -> None:
        self.path = Path(path)
        check_writable(self.path, inputs)
        try:
            self.file = self.path.open("w", newline="")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write ({e.strerror})") from None
        self.file.write(",".join(CSV_HEADER) + "\n")
        self.file.flush()

    def write(self, source: str, frame: int, faces: list[Face]) -> None:
        if not faces:
            return
        rows = [
            [source, frame, f.track_id, *(f"{v:.1f}" for v in f.box), *(f"{v:.2f}" for v in f.points.reshape(-1))]
            for f in faces
        ]
        # The frame's rows go out in one write, then a flush: a Ctrl-C between frames or inside this
        # call never leaves half a row behind.
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self.file.write(text.getvalue())
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class VideoSink:
    """Annotated video with the input's size and frame rate (mp4v in .mp4, MJPG in .avi)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], inputs: list[Path]) -> None:
        self.path = Path(path)
        check_writable(self.path, inputs)
        fourcc = {".avi": "MJPG", ".mkv": "MJPG"}.get(self.path.suffix.lower(), "mp4v")
        self.size = size
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        if not self.writer.isOpened():
            hint = "" if self.path.suffix.lower() in (".mp4", ".avi") else " (use a .mp4 or .avi name)"
            raise OutputError(f"{self.path}: cannot write a video there{hint}")

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)

    def close(self) -> None:
        self.writer.release()


class ImageSink:
    """Annotated images: to `path` for one image, or into the folder `path` for a folder."""

    def __init__(self, path: str | Path, folder: bool, inputs: list[Path]) -> None:
        self.path, self.folder = Path(path), folder
        if folder:
            refuse_input(self.path, inputs)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(f"{self.path}: cannot create the folder ({e.strerror})") from None
            check_writable(self.path / "probe", inputs)
        else:
            check_writable(self.path, inputs)

    def write(self, source: str, image: np.ndarray) -> None:
        target = self.path / Path(source).name if self.folder else self.path
        if not target.suffix:
            target = target.with_suffix(".png")
        if not cv2.imwrite(str(target), image):
            target = target.with_suffix(".png")  # e.g. a .gif input: write what OpenCV can
            cv2.imwrite(str(target), image)

    def close(self) -> None:
        pass
