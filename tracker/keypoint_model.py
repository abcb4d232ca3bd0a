"""Run the cascade TorchScript file on batches of 96x96 crops, on CUDA when present, else the CPU."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kaggle_framing import CROP_SIZE, FLIP_PERMUTATION, NUM_KEYPOINTS
from tracker.weights import WeightsError, load_cascade


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without CUDA is an error, not a silent fallback.
    Any case: `CPU` is `cpu`."""
    name = name.lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise WeightsError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise WeightsError(f"--device {name}: not a device (use auto, cpu or cuda)") from None


class KeypointModel:
    """`model(crops)`: (N, 96, 96) uint8 crops -> (N, 15, 2) float32 keypoints in crop pixels.

    `model.with_mirror(crops)` also answers on the mirrored crops (twice the model time): their mean
    is a little more accurate than either, and how far apart the two are says how sure the model is.
    """

    def __init__(self, weights: str | Path, device: str = "auto") -> None:
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            # Batch-1 convolutions this small gain nothing from a second thread, and the video
            # decoder and the detector want that core.
            torch.set_num_threads(1)
        model = load_cascade(weights, self.device)
        # Freezing folds batch norms into convolutions and inlines the weights: ~30% faster on CPU.
        try:
            self.model = torch.jit.freeze(model)
        except RuntimeError:  # already frozen, or not freezable: run it as it is
            self.model = model

    @torch.inference_mode()
    def _run(self, crops: np.ndarray, mirror: bool) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).view(-1, 1, CROP_SIZE, CROP_SIZE)
        x = x.float().div_(255.0)
        if mirror:
            x = torch.cat([x, x.flip(-1)])
        return self.model(x).float().cpu().numpy()

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
        return self._run(crops, mirror=False)

    def with_mirror(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(answers on the crops, answers on their mirror images mapped back): two (N, 15, 2) arrays."""
        n = len(crops)
        if n == 0:
            empty = np.zeros((0, NUM_KEYPOINTS, 2), np.float32)
            return empty, empty.copy()
        out = self._run(crops, mirror=True)
        mirrored = out[n:, list(FLIP_PERMUTATION)]
        mirrored[..., 0] = (CROP_SIZE - 1) - mirrored[..., 0]  # pixel i of the mirror is pixel 95 - i
        return out[:n], mirrored
