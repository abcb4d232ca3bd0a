"""The frame loop: every frame of a source through the tracker into the sinks."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tracker.app.drawing import displayable, draw_faces
from tracker.app.interrupts import Stop
from tracker.app.output_thread import OutputThread
from tracker.app.profile import Profile
from tracker.app.sinks import Sink, drop_stdout
from tracker.app.window import WindowSink
from tracker.messages import warn
from tracker.pipeline import Face, Frame
from tracker.tracking import Tracker


@dataclass
class Counts:
    """What one run of `annotate` did."""

    frames: int = 0
    faces: int = 0
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM; the outputs hold the frames done
    reader_gone: bool = False  # `--csv -`: standard output's reader went away (a closed pipe)


class FrameRate:
    """Frames per second, smoothed over the last ten or so: what the picture shows."""

    def __init__(self) -> None:
        self.fps, self.frames, self.last = 0.0, 0, time.perf_counter()

    def tick(self, now: float) -> float:
        self.frames += 1
        self.fps = 0.9 * self.fps + 0.1 / max(now - self.last, 1e-6) if self.frames > 1 else 0.0
        self.last = now
        return self.fps


def annotate(source: Iterable[Frame], tracker: Tracker, sinks: list[Sink], images: bool = False,
             show_fps: bool = False, profile: Profile | None = None) -> Counts:
    """Every frame of `source` through the tracker into the sinks; a Ctrl-C or SIGTERM ends it early
    with the outputs holding every frame done (the caller closes them). `images`: the frames are
    unrelated photos (each searched afresh); `show_fps`: the pictures show the frame rate.

    Annotated pictures are drawn once a frame for every sink that takes them: on this thread where a
    window shows them, else on an OutputThread, which then writes every file sink in order (CSV rows
    too); CSV rows alone, and the window, are written on this thread."""
    profile = profile or Profile()
    timings = profile.timings
    frames = faces_found = 0
    rate = FrameRate()
    interrupted = reader_gone = False
    window = next((s for s in sinks if isinstance(s, WindowSink)), None)
    rows = [s for s in sinks if not s.pictures]
    pictures = [s for s in sinks if s.pictures and s is not window]
    show_fps = show_fps or window is not None

    def write(frame: Frame, faces: list[Face], canvas: np.ndarray | None, fps_shown: float | None) -> None:
        t = time.perf_counter()
        if canvas is None and pictures:
            # Drawn here or on this loop's thread (shown), never both: one thread adds to "draw".
            canvas = draw_faces(displayable(frame.image), faces, fps_shown)
            timings["draw"] += time.perf_counter() - t
            t = time.perf_counter()
        for sink in rows:
            sink.write(frame, faces)
        if pictures:
            drawn = dataclasses.replace(frame, image=canvas)
            for sink in pictures:
                sink.write(drawn, faces)
        timings["write"] += time.perf_counter() - t

    # Annotated frames go to a thread of their own (drawing and encoding: ~1.4 ms a 640x480 frame).
    # CSV rows alone are written here: ~10 us a frame, less than handing them to a thread costs.
    outputs = OutputThread() if pictures else None
    try:
        try:
            for frame in source:
                arrived = time.perf_counter()
                timings["decode"] += frame.decode_ms / 1000
                left_out = tracker.faces_left_out
                if images:
                    faces = tracker.process_image(frame.image)
                else:
                    faces = tracker.process(frame.image, frame.timestamp, frame.prepared)
                if tracker.faces_left_out and not left_out:
                    warn(f"{frame.source}: more than {tracker.max_faces} faces (frame {frame.index}); keeping the "
                         "largest (--max-faces; said once)")
                frames += 1
                faces_found += len(faces)
                now = time.perf_counter()
                fps = rate.tick(now)
                fps_shown = fps if show_fps else None
                canvas = draw_faces(displayable(frame.image), faces, fps_shown) if window else None
                if window:
                    timings["draw"] += time.perf_counter() - now
                profile.latencies.append(time.perf_counter() - arrived)
                if outputs:
                    outputs.submit(write, frame, faces, canvas, fps_shown)
                elif rows:
                    write(frame, faces, canvas, fps_shown)
                if window:
                    window.write(dataclasses.replace(frame, image=canvas), faces)
                    if window.stopped:
                        break
        finally:
            # Every frame handed to the outputs is written before the caller closes them, whatever
            # ended the loop: a second Ctrl-C here only restarts the wait.
            while outputs:
                try:
                    outputs.close()
                    break
                except (KeyboardInterrupt, Stop):
                    interrupted = True
    except (KeyboardInterrupt, Stop):
        interrupted = True
    except BrokenPipeError:  # `--csv - | head`: the reader has gone; stop quietly, as Unix tools do
        drop_stdout()
        reader_gone = True
    return Counts(frames, faces_found, interrupted, reader_gone)
