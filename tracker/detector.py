"""The detector seam: what the tracker asks of whatever finds faces, and the box <-> crop framing maths.

A detector finds face boxes in a gray frame (or a region of it) and owns how its boxes sit on a face:
`box_center` and `box_scale` place the Kaggle crop on one of its boxes (measured for each detector:
`python -m train calibrate-box` for the Haar one). `tracker.haar_detector.HaarDetector` is the one
shipped; another is one class with these members.
"""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from kaggle_framing import CROP_SIZE
from tracker.pipeline import Box


class DetectorError(RuntimeError):
    """The detector cannot run at all (its model files missing or unreadable): one line."""


class Detector(Protocol):
    # The Kaggle crop on a box (x, y, w, h): a square of side box_scale * w centred at
    # (x + box_center[0] * w, y + box_center[1] * h).
    box_center: tuple[float, float]
    box_scale: float

    def detect(self, gray: np.ndarray, region: tuple[int, int, int, int] | None = None, both: bool = False) -> Box:
        """(K, 4) float32 boxes x, y, w, h in frame pixels, largest first, in the whole 8-bit gray
        frame or only in `region` (x0, y0, x1, y1). `both`: the most thorough search it has (a video
        frame where one face found must not hide another)."""

    def contains_face(self, patch: np.ndarray, face_side: float) -> bool:
        """Whether a face whose box is about `face_side` pixels wide is in this small upright patch."""

    def close(self) -> None:
        """Let its threads go."""


def framing_from_box(box: Box, center: tuple[float, float], scale: float) -> np.ndarray:
    """2x3 transform from frame pixels to the Kaggle crop of a detector box (x, y, w, h)."""
    x, y, w, h = box
    side = scale * w
    zoom = CROP_SIZE / side
    cx, cy = x + center[0] * w, y + center[1] * h
    return np.array([[zoom, 0.0, CROP_SIZE / 2 - zoom * cx], [0.0, zoom, CROP_SIZE / 2 - zoom * cy]], dtype=np.float32)


def box_from_framing(framing: np.ndarray, center: tuple[float, float], scale: float) -> Box:
    """The detector box (x, y, w, h) that a crop framing corresponds to (square: w = h)."""
    # Scalar maths on Python floats (called for every track on every frame; numpy's is slower here):
    # the crop's centre mapped back through the inverse framing, and the side its scale gives.
    (a, b, tx), (c, d, ty) = framing.tolist()
    det = a * d - b * c
    u, v = CROP_SIZE / 2 - tx, CROP_SIZE / 2 - ty
    cx, cy = (d * u - b * v) / det, (a * v - c * u) / det
    w = CROP_SIZE / math.sqrt(abs(det)) / scale
    return np.array([cx - center[0] * w, cy - center[1] * w, w, w], np.float32)
