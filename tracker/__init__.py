"""The facial keypoint tracker, as a library: `from tracker import Tracker`.

    tracker = Tracker(device="auto")              # the shipped weights; or Tracker("my.pt", ...)
    faces = tracker.process(frame_bgr, seconds)    # [Face(track_id, box, points (15, 2), raw_points, score)]

The application that runs it (command line, frame loop, sinks, folder runs) is `tracker.app`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracker.pipeline import Face, Frame
    from tracker.tracking import Tracker

__all__ = ["Face", "Frame", "Tracker"]


def __getattr__(name: str):
    # Loaded on first use: `import tracker.pipeline` (or the command line's argument check) must not
    # pay for OpenCV and the model runtime.
    if name == "Tracker":
        from tracker.tracking import Tracker

        return Tracker
    if name in ("Face", "Frame"):
        from tracker import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'tracker' has no attribute {name!r}")
