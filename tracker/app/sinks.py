"""Where results go: a `Sink` each, the keypoints CSV, the annotated video, annotated images (and the
window, tracker/app/window.py). A run is a source, a tracker and a list of sinks.

Every writer is opened (and so checked) after the inputs, weights and device, and before the first
frame is processed. A file is written under a hidden temporary name beside its final one
(tracker/app/atomic.py; `sink.temporary`), and the run renames it into place when it ends, normally or
by Ctrl-C / SIGTERM: a run that fails leaves every existing file as it was. Closed early, a writer
still leaves a complete file: CSV rows are written a frame at a time and flushed on close (and every
FLUSH_EVERY seconds), and the video container is finalised on close.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2

from kaggle_framing import COLUMNS
from tracker.app.atomic import commit, kept, partial, temporary
from tracker.app.output_paths import (VIDEO_FOURCC, OutputError, check_output_name, check_writable, refuse_input,
                                      writes_images)
from tracker.app.sources import frame_count
from tracker.messages import warn
from tracker.pipeline import Face, Frame

# `time`: seconds into the video (the camera's since the run started; empty for photos); `score`: the
# face's presence score (empty where the weights have none).
CSV_HEADER = ["source", "frame", "face", "x", "y", "w", "h", *COLUMNS, "time", "score"]
STDOUT = "-"  # `--csv -`: the CSV on standard output, every message on standard error
# Seconds between flushes of the CSV: a reader following it live (`--csv -`, or the temporary file)
# sees each frame's rows this soon. (A flush per frame was a system call per frame: ~2% of a 640x480
# clip's run.)
FLUSH_EVERY = 0.1


class Sink(Protocol):
    """Where a run's results go: `write(frame, faces)` for every frame in order, `close()` once.

    `pictures`: the sink takes the annotated picture (drawn once for every such sink: `frame.image`
    is it). A file sink writes to `temporary` (None: straight to `path`, or nothing to rename) and
    counts the frames handed to it in `written`; the run renames its file into place (`settle`)."""

    pictures: bool
    path: Path | None
    temporary: Path | None
    written: int

    def write(self, frame: Frame, faces: list[Face]) -> None: ...

    def close(self) -> None: ...


def settle(sinks: list[Sink], done: bool) -> list[Path]:
    """The sinks' temporary files (their writers closed): `done`, renamed into place; else, where any
    frame was written, kept under their partial names (returned); else removed."""
    files = [(sink.temporary, sink.path) for sink in sinks if sink.temporary is not None]
    files = [(temporary, path) for temporary, path in files if temporary.exists()]
    if done:
        for temporary, path in files:
            commit(temporary, path)
        return []
    if not any(sink.written for sink in sinks):
        for temporary, _ in files:
            temporary.unlink()
        return []
    for temporary, path in files:
        os.replace(temporary, kept(path))
    return [kept(path) for _, path in files]


class CsvSink:
    """`source,frame,face,x,y,w,h` + the 30 Kaggle columns + `time,score`, one row per face per frame
    (`time` empty for frames that have none: photos)."""

    pictures = False

    def __init__(self, path: str | Path, inputs: list[Path]) -> None:
        self.path = Path(path)
        self.temporary: Path | None = None  # where the rows go until the run ends (None: in place)
        self.written = 0  # frames handed to `write`
        self.started = False
        self.flushed = time.monotonic()
        self._quoted: dict[str, str] = {}  # source name -> its CSV field (quoted where it must be)
        if str(path) == STDOUT:
            self.file = sys.stdout
            return  # the header waits for `start`: a run that fails before prints nothing
        check_writable(self.path, inputs)
        self.temporary = temporary(self.path)
        try:
            self.file = (self.temporary or self.path).open("w", newline="")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write ({e.strerror})") from None
        try:
            self.start()
        except OutputError:
            with contextlib.suppress(OSError):  # (a full disk: the flush on closing fails again)
                self.file.close()
            if self.temporary is not None:
                self.temporary.unlink(missing_ok=True)
            raise

    def start(self) -> None:
        """Write the header (once): into a file at once, on standard output once the run starts."""
        if not self.started:
            self.started = True
            with self._writing():
                self.file.write(",".join(CSV_HEADER) + "\n")
                self.file.flush()

    def _field(self, source: str) -> str:
        if source not in self._quoted:
            text = io.StringIO()
            csv.writer(text, lineterminator="").writerow([source])
            self._quoted[source] = text.getvalue()
        return self._quoted[source]

    def write(self, frame: Frame, faces: list[Face]) -> None:
        """The rows of one frame."""
        self.start()
        self.written += 1
        if not faces:
            return
        head = f"{self._field(frame.source)},{frame.index},"
        when = "" if frame.timestamp is None else f"{frame.timestamp:.3f}"
        # .tolist(): formatting Python floats is several times faster than numpy scalars, same text
        rows = [head + ",".join([str(f.track_id), *map("{:.1f}".format, f.box.tolist()),
                                 *map("{:.2f}".format, f.points.reshape(-1).tolist()),
                                 when, "" if f.score is None else f"{f.score:.3f}"]) + "\n" for f in faces]
        # The frame's rows go out in one write: a Ctrl-C (raised between Python operations) never
        # leaves half a row behind, and close() flushes what is buffered.
        with self._writing():
            self.file.write("".join(rows))
            if time.monotonic() - self.flushed >= FLUSH_EVERY:
                self.file.flush()
                self.flushed = time.monotonic()

    def close(self) -> None:
        if self.file is sys.stdout:
            try:
                self.file.flush()
            except BrokenPipeError:  # `--csv - | head`: the reader has gone
                drop_stdout()
        elif not self.file.closed:
            with self._writing():
                try:
                    self.file.flush()
                    if self.temporary is not None:  # on disk before the run renames it into place
                        os.fsync(self.file.fileno())
                finally:
                    self.file.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A failed write (a full disk) is an OutputError naming the file; a reader gone from `--csv -`
        stays a BrokenPipeError, which the caller ends the run quietly on."""
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as e:
            where = "standard output" if self.file is sys.stdout else self.path
            raise OutputError(f"{where}: cannot write the CSV ({e.strerror or e})") from None


def drop_stdout() -> None:
    """Standard output's reader has gone: send what is left (buffered rows) nowhere, not to a traceback."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class VideoSink:
    """Annotated video with the input's size and frame rate (mp4v in .mp4 and .mov, MJPG in .avi and .mkv)."""

    pictures = True

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], inputs: list[Path]) -> None:
        self.path = Path(path)
        check_output_name(self.path, video=True)
        check_writable(self.path, inputs)
        self.temporary = partial(self.path)
        self.size = size
        self.written = 0
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
        # A failed write (a full disk) is OpenCV's warning line a frame ("FFmpeg: Failed to write
        # frame") and nothing else: kept off the terminal, and found by `close` in the file itself.
        self._log_level = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        self.writer: cv2.VideoWriter | None = cv2.VideoWriter(str(self.temporary), fourcc, fps, size)
        if not self.writer.isOpened():
            self.close()
            self.temporary.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: OpenCV cannot open a video writer there")

    def write(self, frame: Frame, faces: list[Face]) -> None:
        image = frame.image
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)
        self.written += 1

    def close(self) -> None:
        """Finalise the video and check it holds the frames written: OpenCV's writer reports no
        failure, but a container whose writes failed does not open or counts fewer frames (one
        less tolerated, for a count estimated from the duration)."""
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        try:
            if self.written and frame_count(self.temporary) < self.written - 1:
                raise OutputError(f"{self.path}: cannot write the video (its frames did not reach the disk: is it full?)")
        finally:
            cv2.utils.logging.setLogLevel(self._log_level)


class ImageSink:
    """Annotated images: to `path` for one image, or into the folder `path` for a folder, under the
    image's path in the input folder (`root`). An image whose extension OpenCV cannot write (.jfif)
    gets `.png` added to its name; an image that fails to write is a warning, not the end of the run."""

    pictures = True

    def __init__(self, path: str | Path, root: Path | None, inputs: list[Path]) -> None:
        self.path, self.root = Path(path), root
        self.temporary: Path | None = None  # one image: where it is written until the run ends
        self.written = 0
        if root is not None:
            refuse_input(self.path, inputs)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OutputError(f"{self.path}: cannot create the folder ({e.strerror})") from None
            check_writable(self.path / "probe", inputs)
        else:
            check_output_name(self.path, video=False)
            check_writable(self.path, inputs)

    def write(self, frame: Frame, faces: list[Face]) -> None:
        self.written += 1
        image = frame.image
        target = self.path / Path(frame.source).relative_to(self.root) if self.root is not None else self.path
        if not writes_images(target):
            target = target.with_name(target.name + ".png")
        # Under a temporary name first: a folder's images are renamed into place one by one, the
        # single image by the run as it ends.
        written_to = partial(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            written = cv2.imwrite(str(written_to), image)
            reason = "OpenCV could not write it"
            if written and self.root is not None:
                os.replace(written_to, target)
        except (OSError, cv2.error) as e:
            written, reason = False, getattr(e, "strerror", None) or str(e).strip().splitlines()[-1][:120]
        if not written:
            written_to.unlink(missing_ok=True)
            warn(f"{target}: not written ({reason})")
        elif self.root is None:
            self.temporary = written_to

    def close(self) -> None:
        pass
