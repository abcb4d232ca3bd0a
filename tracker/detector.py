"""The detector seam: what the tracker asks of whatever finds faces, and the box <-> crop framing maths.

A detector finds face candidates in a gray frame (or a region of it): a box and the angle at which
the face in it stands upright. It owns how its boxes sit on a face: `box_center` and `box_scale`
place the Kaggle crop on one of its boxes (measured for each detector by `python -m train
calibrate-box --detector NAME`). `tracker.haar_detector.HaarDetector` is the default; another is
one class with these members, registered in `tracker.detectors`.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import cv2
import numpy as np

from kaggle_framing import CROP_SIZE
from tracker.pipeline import Box


@contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread pool at `count` threads inside the block, and as it was after it. (The tracker
    keeps it at one beside its own threads; a photo's detection has the machine to itself.)"""
    previous = cv2.getNumThreads()
    if count != previous:
        cv2.setNumThreads(count)
    try:
        yield
    finally:
        if count != previous:
            cv2.setNumThreads(previous)


class DetectorError(RuntimeError):
    """The detector cannot run at all (its model files missing or unreadable): one line."""


class Detector(Protocol):
    # The Kaggle crop on a box (x, y, w, h): a square of side box_scale * w centred at
    # (x + box_center[0] * w, y + box_center[1] * h).
    box_center: tuple[float, float]
    box_scale: float

    def detect(self, gray: np.ndarray, region: tuple[int, int, int, int] | None = None, both: bool = False,
               routine: bool = False) -> Box:
        """(K, 5) float32 candidates x, y, w, h, angle in frame pixels, largest first, in the whole
        8-bit gray frame or only in `region` (x0, y0, x1, y1). `angle` (degrees, counter-clockwise on
        screen as in `cv2.getRotationMatrix2D`): the frame turned by it about the box's centre shows
        the face upright, in the box (x, y, w, h). `both`: the most thorough search it has (a video
        frame where one face found must not hide another); `routine`: a video's periodic look while
        faces are tracked, which may be cheaper and cover its search over several calls."""

    def contains_face(self, patch: np.ndarray, face_side: float) -> bool:
        """Whether a face whose box is about `face_side` pixels wide is in this small upright patch."""

    def close(self) -> None:
        """Let its threads go."""


def no_candidates() -> Box:
    """An empty (0, 5) candidate array."""
    return np.zeros((0, 5), np.float32)


def framing_from_box(box: Box, center: tuple[float, float], scale: float) -> np.ndarray:
    """2x3 transform from frame pixels to the Kaggle crop of a detector box (x, y, w, h) or
    candidate (x, y, w, h, angle): the crop turned by the angle about the box's centre."""
    x, y, w, h = (float(v) for v in box[:4])
    angle = math.radians(float(box[4])) if len(box) > 4 else 0.0
    zoom = CROP_SIZE / (scale * w)
    cos, sin = zoom * math.cos(angle), zoom * math.sin(angle)
    # Frame -> crop: zoom * R(angle) (p - c) about the box centre c, then the crop's own centre moved
    # to where the detector's framing puts it in the upright box.
    cx, cy = x + w / 2, y + h / 2
    ux, uy = zoom * (center[0] - 0.5) * w, zoom * (center[1] - 0.5) * h
    return np.array([[cos, sin, CROP_SIZE / 2 - ux - cos * cx - sin * cy],
                     [-sin, cos, CROP_SIZE / 2 - uy + sin * cx - cos * cy]], dtype=np.float32)


def box_from_framing(framing: np.ndarray, center: tuple[float, float], scale: float) -> Box:
    """The upright detector box (x, y, w, h) that a crop framing corresponds to (square: w = h; for
    a turned framing, the box `framing_from_box` turned by its angle)."""
    # Scalar maths on Python floats (called for every track on every frame; numpy's is slower here):
    # where `framing_from_box` puts the box centre in the crop (a fixed point: the offset of the
    # detector's framing, in crop pixels), mapped back through the inverse framing; the side from
    # the framing's scale.
    (a, b, tx), (c, d, ty) = framing.tolist()
    det = a * d - b * c
    u = CROP_SIZE / 2 - CROP_SIZE * (center[0] - 0.5) / scale - tx
    v = CROP_SIZE / 2 - CROP_SIZE * (center[1] - 0.5) / scale - ty
    cx, cy = (d * u - b * v) / det, (a * v - c * u) / det
    w = CROP_SIZE / math.sqrt(abs(det)) / scale
    return np.array([cx - w / 2, cy - w / 2, w, w], np.float32)
