"""The cascade on batches of 96x96 crops, with or without their mirror images, whichever runtime runs it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_framing import NUM_KEYPOINTS, mirror_average
from tracker.runtime import open_runtime


@dataclass
class Answers:
    """`points` (N, 15, 2) crop pixels (for weights that mirror inside, the mean of the answers on each
    crop and on its mirror image; for one-pass weights, the crop's own answer); `disagreement` (N,) how far apart those two answers are (crop px, mean over
    points; None where mirrors were not asked for); `presence` (N,) probability that each crop holds
    a face (1 where the weights cannot say)."""

    points: np.ndarray
    disagreement: np.ndarray | None
    presence: np.ndarray


class KeypointModel:
    """`model.predict(crops)`: (N, 96, 96) uint8 crops -> `Answers`, points (N, 15, 2) float32 in crop
    pixels. `model.predict(crops, mirror=True)` also answers on the mirrored crops: how far apart the two
    are says how sure the model is. Weights that mirror inside (`runtime.mirrors`) always do, in one call,
    and answer the mean. For others (the shipped ones: one pass a face) the mirrored crops are run here,
    at twice the cost, only when asked for, and the points stay the crop's own answer: the one every
    tracked frame gets, and the one their calibrated output offset holds for (in a mean with the mirror
    image's answer, mapped back, the offset's x would cancel: 0.6% of the eye distance on HELEN's test faces).
    """

    def __init__(self, weights: str | Path, device: str = "auto") -> None:
        self.runtime = open_runtime(weights, device)
        self.device = str(self.runtime.device)
        self.has_presence = self.runtime.has_presence

    def predict(self, crops: np.ndarray, mirror: bool = False) -> Answers:
        n = len(crops)
        if n == 0:
            return Answers(np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros(0, np.float32) if mirror else None,
                           np.zeros(0, np.float32))
        if mirror and not self.runtime.mirrors:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        points, presence, disagreement = self.runtime(crops)
        if presence is None:
            presence = np.ones(len(crops), np.float32)
        if not mirror or self.runtime.mirrors:
            return Answers(points, disagreement if mirror else None, presence)
        _, disagreement = mirror_average(points[:n], points[n:])
        return Answers(points[:n], disagreement, (presence[:n] + presence[n:]) / 2)
