"""The cascade on batches of 96x96 crops, with or without their mirror images, whichever runtime runs it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_framing import CROP_LABEL_ORIGIN, CROP_SIZE, FLIP_PERMUTATION, NUM_KEYPOINTS
from tracker.runtime import open_runtime


@dataclass
class Answers:
    """`points` (N, 15, 2) crop pixels; `mirrored` the same from the mirrored crops, mapped back (or
    None); `presence` (N,) probability that each crop holds a face (1 where the weights cannot say;
    with mirrors, the mean of both answers)."""

    points: np.ndarray
    mirrored: np.ndarray | None
    presence: np.ndarray


class KeypointModel:
    """`model(crops)`: (N, 96, 96) uint8 crops -> (N, 15, 2) float32 keypoints in crop pixels.

    `model.with_mirror(crops)` also answers on the mirrored crops (twice the model time): their mean
    is a little more accurate than either, and how far apart the two are says how sure the model is.
    `model.predict` gives both and the presence of a face.
    """

    def __init__(self, weights: str | Path, device: str = "auto") -> None:
        self.runtime = open_runtime(weights, device)
        self.device = str(self.runtime.device)
        self.has_presence = self.runtime.has_presence

    def predict(self, crops: np.ndarray, mirror: bool = False) -> Answers:
        n = len(crops)
        if n == 0:
            empty = np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
            return Answers(empty, empty.copy() if mirror else None, np.zeros(0, np.float32))
        if mirror:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        points, presence = self.runtime(crops)
        if presence is None:
            presence = np.ones(len(crops), np.float32)
        if not mirror:
            return Answers(points, None, presence)
        mirrored = points[n:, list(FLIP_PERMUTATION)]
        # Pixel i of the mirror is pixel 95 - i; the answers count pixels from CROP_LABEL_ORIGIN.
        mirrored[..., 0] = (CROP_SIZE - 1 + 2 * CROP_LABEL_ORIGIN) - mirrored[..., 0]
        return Answers(points[:n], mirrored, (presence[:n] + presence[n:]) / 2)

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.predict(crops).points

    def with_mirror(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answers on the crops, answers on their mirror images mapped back): two (N, 15, 2) arrays."""
        answers = self.predict(crops, mirror=True)
        return answers.points, answers.mirrored
