"""Draw faces on a frame: the 15 points, the track id beside the box, the frame rate."""
from __future__ import annotations

import cv2
import numpy as np

from kaggle_framing.crop import to_8bit, to_gray
from tracker.pipeline import Face

# One colour per track id (BGR), cycled.
PALETTE = [(0, 255, 0), (0, 200, 255), (255, 128, 0), (255, 0, 255), (0, 255, 255), (128, 128, 255)]


def displayable(frame: np.ndarray) -> np.ndarray:
    """An 8-bit BGR copy of any frame (gray, BGRA, 16-bit, colour kept) to draw on."""
    eight = to_8bit(frame)
    if eight.ndim == 3 and eight.shape[2] == 3:
        return eight.copy() if eight is frame else eight
    if eight.ndim == 3 and eight.shape[2] == 4:
        return cv2.cvtColor(eight, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(to_gray(eight), cv2.COLOR_GRAY2BGR)


def draw_faces(image: np.ndarray, faces: list[Face], fps: float | None = None) -> np.ndarray:
    """Draw in place on an 8-bit BGR image and return it."""
    thick = max(1, round(min(image.shape[:2]) / 400))
    for face in faces:
        colour = PALETTE[face.track_id % len(PALETTE)]
        radius = max(1, round(face.box[2] / 60))
        for x, y in face.points:
            cv2.circle(image, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)
        x, y, w, h = (round(float(v)) for v in face.box)
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, thick)
        cv2.putText(image, f"#{face.track_id}", (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick, colour, thick)
    if fps is not None:
        cv2.putText(image, f"{fps:.0f} FPS", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    return image
