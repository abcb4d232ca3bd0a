"""Gray frames, and the Kaggle-framed face crop cut out of them (at run time and to build training crops)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from kaggle_framing import CROP_SIZE, invert_affine


def warp_crop(gray: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """`size` x `size` uint8 crop through the 2x3 image->crop `matrix`.

    A face much larger than the crop is first halved with `cv2.pyrDown` (low-pass, then decimate)
    until the remaining scale is above 1/2, so that small crops of big faces are not aliased.
    Pixels outside the frame repeat the border, as a detector box cut at the frame edge would.
    """
    # The bookkeeping is on Python floats: on six numbers, numpy's per-call overhead was most of the
    # function's time (0.38 ms of main-thread time per crop on the 640x480 clip).
    (a, b, tx), (c, d, ty) = matrix.astype(np.float64).tolist()
    scale = math.sqrt(abs(a * d - b * c))
    if scale < 0.5:
        # Only the region the crop can see is decimated: keep the hot path cheap on big frames.
        (ia, ib, itx), (ic, id_, ity) = invert_affine(matrix).astype(np.float64).tolist()
        corners = ((0, 0), (size, 0), (0, size), (size, size))
        xs = [u * ia + v * ib + itx for u, v in corners]
        ys = [u * ic + v * id_ + ity for u, v in corners]
        h, w = gray.shape[:2]
        x0, y0 = min(max(math.floor(min(xs)) - 4, 0), w - 1), min(max(math.floor(min(ys)) - 4, 0), h - 1)
        x1, y1 = min(max(math.ceil(max(xs)) + 4, x0 + 1), w), min(max(math.ceil(max(ys)) + 4, y0 + 1), h)
        gray = gray[y0:y1, x0:x1]
        tx, ty = tx + (a * x0 + b * y0), ty + (c * x0 + d * y0)
        while scale < 0.5 and min(gray.shape[:2]) >= 4:
            gray = cv2.pyrDown(gray)
            a, b, c, d = 2.0 * a, 2.0 * b, 2.0 * c, 2.0 * d  # the same crop pixel now comes from half the coordinate
            scale *= 2.0
    matrix = np.array([[a, b, tx], [c, d, ty]])
    return cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def to_8bit(frame: np.ndarray) -> np.ndarray:
    """The frame in 8 bits, channels kept: 16-bit (any integer) scaled, floats read as [0, 1]."""
    if frame.dtype == np.uint8:
        return frame
    if np.issubdtype(frame.dtype, np.floating):
        return np.clip(np.nan_to_num(frame) * 255, 0, 255).astype(np.uint8)
    return (frame.astype(np.float32) * (255.0 / np.iinfo(frame.dtype).max)).astype(np.uint8)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """8-bit gray from gray, BGR or BGRA frames of 8 or 16 bits (or floats in [0, 1])."""
    frame = to_8bit(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
