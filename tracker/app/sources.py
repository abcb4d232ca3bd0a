"""Where frames come from: a camera, a video file, or images (a file or a folder).

Each source yields `Frame`s and raises `InputError` (one clear line) when it cannot start.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tracker.messages import warn
from tracker.pipeline import Frame


# FFmpeg logs each damaged packet to the terminal ("partial file", "moov atom not found"); a damaged
# video gets one line of ours instead. Read when OpenCV first opens a video (and inherited by a batch's
# worker processes); a user's own OPENCV_FFMPEG_LOGLEVEL wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


class InputError(RuntimeError):
    """An input that cannot be used at all; the message names it and says what to do."""


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such {what}")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    if path.is_file() and not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (check its permissions)")


# Decoded frames a video may hold ready (4 to 32 of them): while the tracker waits on a detector pass
# (~20 ms at a new scene) the decoder runs ahead instead of idling after a few frames; 640x480: 32.
PREFETCH_BYTES = 48 * 2**20


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


class _Prefetch:
    """The frames between a decoder thread and their reader: at most `size`, first in first out. A
    writer that has filled it sleeps until the reader has taken half, then decodes a burst, rather
    than waking for every frame taken (a thread switch and two hand-overs of the GIL a frame)."""

    def __init__(self, size: int) -> None:
        self.items: deque = deque()
        self.size = size
        self.changed = threading.Condition()

    def put(self, item: object, stop: threading.Event) -> bool:
        """Add `item`, waiting for room; False (not added) once `stop` is set while full."""
        with self.changed:
            while len(self.items) >= self.size:
                if stop.is_set():
                    return False
                self.changed.wait(0.1)
            self.items.append(item)
            if len(self.items) == 1:
                self.changed.notify_all()  # the reader may be waiting
        return True

    def get(self) -> object:
        with self.changed:
            while not self.items:
                self.changed.wait()
            item = self.items.popleft()
            if len(self.items) == self.size // 2:
                self.changed.notify_all()  # the writer may be waiting
            return item


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
        _check_file(self.path, "video file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder (use --image for a folder of images)")
        self.capture = cv2.VideoCapture(str(self.path))
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
        self._queue = _Prefetch(prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._decode, args=(first,), daemon=True)
        self._thread.start()

    def _decode(self, first: np.ndarray) -> None:
        frame, index = first, 0
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                if index > 0:
                    ok, frame = self.capture.read()
                    if not ok:
                        break
                prepared = self.prepare(frame) if self.prepare is not None else None
                item = Frame(frame, index, index / self.fps, self.name, (time.perf_counter() - t) * 1000, prepared)
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


def exif_orientation(exif: bytes) -> int:
    """The Orientation tag (1-8; 1 = upright) of an EXIF block (a TIFF header and IFD0), 1 when absent
    or unreadable."""
    exif = exif.removeprefix(b"Exif\x00\x00")  # the JPEG APP1 marker, where a reader leaves it on
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHIH", exif, ifd + 2 + 12 * i)
            if tag == 0x0112 and kind == 3:  # Orientation, a SHORT
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The image as EXIF `orientation` says it is to be shown: 2-4 mirror it or turn it half way,
    5-8 swap its axes first (6: turn it a quarter clockwise; 8: anticlockwise)."""
    if orientation >= 5:
        image = image.swapaxes(0, 1)
    if orientation in (2, 3, 6, 7):
        image = image[:, ::-1]
    if orientation in (3, 4, 7, 8):
        image = image[::-1]
    return np.ascontiguousarray(image)


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


def read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """An image file at its own depth and channels (16-bit, alpha), turned upright by its EXIF
    orientation (IMREAD_UNCHANGED alone would ignore it: a phone photo would lie on its side), and
    what its decoder complained of ("" where nothing: a damaged file may still decode, in part)."""
    with held_back_stderr() as said:
        try:
            image, kinds, blocks = cv2.imreadWithMetadata(str(path), flags=cv2.IMREAD_UNCHANGED)
        except cv2.error:  # a codec built in but switched off (OpenEXR) raises instead of failing
            image = None
    complaint = said[-1].strip() if said else ""
    if image is None or image.size == 0:
        return None, complaint
    for kind, block in zip(kinds, blocks):
        if kind == cv2.IMAGE_METADATA_EXIF:
            return upright(image, exif_orientation(np.asarray(block).tobytes())), complaint
    return image, complaint


class ImageSource:
    """One image, or every image of a folder and its subfolders (sorted; hidden files and folders,
    and the folder `skip`, left out); files that are not images are skipped with a warning."""

    def __init__(self, path: str | Path, skip: Path | None = None) -> None:
        self.path = Path(path)
        _check_file(self.path, "image or folder")
        if self.path.is_dir():
            skip = skip.resolve() if skip is not None else None
            self.files = sorted(
                p for p in self.path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
                and (skip is None or skip not in p.resolve().parents)
            )
            if not self.files:
                raise InputError(f"{self.path}: the folder has no files")
            self._first: tuple[np.ndarray | None, str] | None = None
        else:
            self.files = [self.path]
            # One image is read now: unreadable, it fails the run before any output is opened.
            t = time.perf_counter()
            self._first = read_image(self.path)
            self._first_ms = (time.perf_counter() - t) * 1000
            if self._first[0] is None:
                raise InputError(f"{self.path}: not a readable image")
        self.fps = 0.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0  # images read: a skipped file takes no frame number
        for path in self.files:
            t = time.perf_counter()
            image, complaint = self._first if self._first is not None else read_image(path)
            if image is None:
                warn(f"{path}: skipped (not a readable image)")
                continue
            if complaint:
                warn(f"{path}: damaged ({complaint}); used what decodes")
            decode_ms = self._first_ms if self._first is not None else (time.perf_counter() - t) * 1000
            yield Frame(image, index, 0.0, str(path), decode_ms)
            index += 1

    def close(self) -> None:
        pass
