"""The data flowing between the pipeline's stages: a `Frame` in, a `Face` per tracked face out.

Every stage (sources, tracker, sinks, drawing) imports these from here, not from the stage that
makes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# A face box: (x, y, w, h) float32 in frame pixels; (K, 4) for several. A detector's candidates add
# the angle at which the face stands upright: (K, 5) x, y, w, h, angle (tracker/detector.py).
Box = np.ndarray


@dataclass
class Frame:
    image: np.ndarray
    index: int
    timestamp: float | None  # seconds into the video (since the start, for a camera); None for a photo
    source: str  # the file it came from (the camera index for a camera)
    decode_ms: float = 0.0
    prepared: Any = None  # what the source's `prepare` made of the image on its own thread, if it has one


@dataclass
class Face:
    """One tracked face in one frame: `points` (15, 2) frame pixels (smoothed unless smoothing is
    off), `raw_points` straight from the model, `box` (x, y, w, h) in the detector's framing, `score`
    the model's presence score for its crop (0-1; None where the weights have no presence output)."""

    track_id: int
    box: Box
    points: np.ndarray
    raw_points: np.ndarray
    score: float | None = None
