"""Where frames come from: a camera or a video file (images: tracker/app/images.py).

Each source yields `Frame`s and raises `InputError` (one clear line) when it cannot start.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.app.prefetch import Prefetch
from tracker.messages import warn
from tracker.pipeline import Frame


# FFmpeg logs each damaged packet to the terminal ("partial file", "moov atom not found"); a damaged
# video gets one line of ours instead. Read when OpenCV first opens a video (and inherited by a batch's
# worker processes); a user's own OPENCV_FFMPEG_LOGLEVEL wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


class InputError(RuntimeError):
    """An input that cannot be used at all; the message names it and says what to do."""


def check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such {what}")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if path.is_file() and not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (check its permissions)")


# Decoded frames a video may hold ready (4 to 32 of them): while the tracker waits on a detector pass
# (~20 ms at a new scene) the decoder runs ahead instead of idling after a few frames; 640x480: 32.
PREFETCH_BYTES = 48 * 2**20


# Frames of at most this many pixels are decoded on one thread. FFmpeg's default, a thread per core
# decoding frames in parallel, costs more CPU (two cores, H.264: 640x480 0.95 -> 0.60 ms a frame,
# 512x512 ~2.2 -> ~1.7) and is no faster there, where the tracker wants the other core; on larger
# frames it pays (1280x720: 5.7 ms a frame against 6.5 on one thread).
ONE_THREAD_PIXELS = 640 * 480


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if capture.isOpened() and 0 < capture.get(cv2.CAP_PROP_FRAME_WIDTH) * capture.get(cv2.CAP_PROP_FRAME_HEIGHT) <= ONE_THREAD_PIXELS:
        capture.release()  # (opening again: ~2 ms; the thread count is fixed when a video opens)
        capture = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    return capture


def _header_frames(capture: cv2.VideoCapture) -> int:
    """The frame count in an open video's header (0 where it has none)."""
    return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))


def frame_count(path: Path) -> int:
    """The frame count in a video's header (0 where it has none or does not open)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return _header_frames(capture)
    finally:
        capture.release()


class VideoSource:
    """Frames of a video file, decoded in a background thread so decoding overlaps the model.

    A damaged or truncated file ends at the last frame that decodes, with a warning (`cut_short`).
    `prefetch`: frames decoded ahead (default: as many as PREFETCH_BYTES hold, 4 to 32).
    `name` is what frames say they came from (default: the path); `prepare(image)`, where given, runs
    on the decoder's thread too, into `Frame.prepared` (tracker.tracking.prepare: the gray frame and
    its thumbnail, off the tracker's core). Frames are always BGR, whatever the run writes: the
    tracker's gray is made from them the same way in every run, so its points are too.
    """

    def __init__(self, path: str | Path, prefetch: int | None = None, name: str | None = None,
                 prepare: Callable[[np.ndarray], Any] | None = None) -> None:
        self.path = Path(path)
        self.prepare = prepare
        self.name = name or str(self.path)
        check_file(self.path, "video file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder (use --image for a folder of images)")
        self.capture = _open_video(self.path)
        ok, first = self.capture.read() if self.capture.isOpened() else (False, None)
        if not ok:
            self.capture.release()
            raise InputError(f"{self.path}: not a readable video (no frame decodes)")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if np.isfinite(fps) and 1 <= fps <= 1000 else 30.0
        self.size = (first.shape[1], first.shape[0])
        self.expected = _header_frames(self.capture)
        self.cut_short: str | None = None  # why the file ended before the frame count in its header
        if prefetch is None:
            prefetch = min(max(PREFETCH_BYTES // first.nbytes, 4), 32)
        self._queue = Prefetch(prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, args=(first,), daemon=True)
        self._thread.start()

    def _timestamp(self, index: int, previous: float) -> float:
        """Seconds of the frame just read: the video's own timestamp (variable frame rates included),
        or index / fps where the container gives none that moves forward."""
        seconds = self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
        if np.isfinite(seconds) and seconds >= 0 and (index == 0 or seconds > previous):
            return seconds
        return max(index / self.fps, previous + 1e-3) if index else 0.0

    def _decode(self, first: np.ndarray) -> None:
        frame, index = first, 0
        timestamp = self._timestamp(0, 0.0)
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                if index > 0:
                    ok, frame = self.capture.read()
                    if not ok:
                        break
                    timestamp = self._timestamp(index, timestamp)
                prepared = self.prepare(frame) if self.prepare is not None else None
                item = Frame(frame, index, timestamp, self.name, (time.perf_counter() - t) * 1000, prepared)
                if not self._queue.put(item, self._stop):
                    break
                index += 1
        finally:
            # The end marker; once the reader has stopped (close) nobody takes it, so never block on it.
            self._queue.put(None, self._stop)

    def __iter__(self) -> Iterator[Frame]:
        count = 0
        while True:
            item = self._queue.get()
            if item is None:
                break
            count += 1
            yield item
        if self.expected and count < self.expected - 1:
            self.cut_short = f"stopped after {count} of {self.expected} frames (the rest does not decode)"
            warn(f"{self.name}: {self.cut_short}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.capture.release()


def read_frames(path: str | Path, count: int) -> tuple[list[np.ndarray], float]:
    """The first `count` frames of a video file (fewer if it is shorter) and its frame rate: clips
    held in memory by the tests and benchmarks. Raises InputError like VideoSource."""
    source = VideoSource(path)
    try:
        return [frame.image for frame in itertools.islice(source, count)], source.fps
    finally:
        source.close()


class CameraSource:
    """Live frames from a camera; if reads start failing (unplugged), the run ends cleanly."""

    def __init__(self, index: int) -> None:
        # OpenCV logs every backend it tries on a missing camera (a dozen lines); our one line says it.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self.capture = cv2.VideoCapture(index)
            ok, first = self.capture.read() if self.capture.isOpened() else (False, None)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not ok:
            self.capture.release()
            raise InputError(f"camera {index}: cannot open it (no camera at that index, busy, or no permission)")
        self.index = index
        self.first = first
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if np.isfinite(fps) and 1 <= fps <= 240 else 30.0
        self.size = (first.shape[1], first.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        yield Frame(self.first, 0, 0.0, f"camera:{self.index}")
        index = 1
        while True:
            t = time.perf_counter()
            ok, image = self.capture.read()
            if not ok:
                warn(f"camera {self.index}: frames stopped arriving (unplugged?); finishing")
                return
            yield Frame(image, index, time.monotonic() - start, f"camera:{self.index}", (time.perf_counter() - t) * 1000)
            index += 1

    def close(self) -> None:
        self.capture.release()


