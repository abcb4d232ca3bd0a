"""The cascade TorchScript file run by torch: the CUDA runtime, and the CPU one where the ONNX twin
cannot be used."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kaggle_framing import CROP_SIZE
from kaggle_framing.weights_contract import WeightsError, answers_on_mirror, load_torchscript


def torch_device(name: str) -> torch.device:
    """`cuda` without CUDA is an error, not a silent fallback."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise WeightsError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise WeightsError(f"--device {name}: not a device (use auto, cpu or cuda)") from None


class TorchScriptCascade:
    """`cascade(crops)`: (N, 96, 96) uint8 crops -> (points (N, 15, 2), presence (N,) or None,
    disagreement with the mirror image (N,) or None); see kaggle_framing.weights_contract."""

    def __init__(self, path: str | Path, device: str) -> None:
        self.device = torch_device(device)
        if self.device.type == "cpu":
            # Batch-1 convolutions this small gain nothing from a second thread, and the video
            # decoder and the detector want that core.
            torch.set_num_threads(1)
        model = load_torchscript(path, self.device)
        self.has_presence = hasattr(model, "with_presence")
        self.mirrors = answers_on_mirror(model)
        kept = [name for name, has in (("with_presence", self.has_presence), ("answers", self.mirrors)) if has]
        # Freezing folds batch norms into convolutions and inlines the weights: ~30% faster on CPU.
        try:
            self.model = torch.jit.freeze(model, preserved_attrs=kept or None)
        except RuntimeError:  # already frozen, or not freezable: run it as it is
            self.model = model

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).view(-1, 1, CROP_SIZE, CROP_SIZE)
        x = x.float().div_(255.0)
        if self.mirrors:
            out = self.model.answers(x)
        elif self.has_presence:
            out = (*self.model.with_presence(x), None)
        else:
            out = (self.model(x), None, None)
        return tuple(t if t is None else t.float().cpu().numpy() for t in out)
