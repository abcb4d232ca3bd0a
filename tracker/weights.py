"""Load and check a cascade TorchScript file against the weights contract.

Contract: `torch.jit.load(path)` alone loads it; input float32 (N, 1, 96, 96) in [0, 1], a face in
the Kaggle framing; output float32 (N, 15, 2) crop pixels in Kaggle keypoint order. The extra file
`keypoints.json` records the names and framing so a reader can check what it loaded.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from kaggle_framing import CROP_SIZE, KEYPOINT_NAMES, MEAN_SHAPE, NUM_KEYPOINTS

EXTRA_FILE = "keypoints.json"
# The shipped weights: the `weights` folder beside the `tracker` package, in a checkout and once
# installed alike (pyproject.toml installs it as package data), wherever the program is run from.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cascade.pt"

# TorchScript is the weights format by contract; its deprecation notices are noise to our users.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)


class WeightsError(RuntimeError):
    """A weights file that cannot be used; the message names it and says why."""


def contract_metadata() -> dict:
    """What `keypoints.json` holds: written at export, checked at load."""
    return {
        "keypoints": list(KEYPOINT_NAMES),
        "input": [None, 1, CROP_SIZE, CROP_SIZE],
        "input_range": [0.0, 1.0],
        "output": [None, NUM_KEYPOINTS, 2],
        "units": "crop pixels",
        "framing": {"crop_size": CROP_SIZE, "mean_shape": np.round(MEAN_SHAPE, 3).tolist()},
    }


def load_cascade(path: str | Path, device: torch.device | str = "cpu") -> torch.jit.ScriptModule:
    """Load a cascade file on `device`, check its contract with a dry run, and return it in eval mode."""
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder; give the weights file (a .pt file) itself")
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    extra = {EXTRA_FILE: ""}
    try:
        model = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError, ValueError, zipfile errors... for bad files
        # The first sentence only: torch appends a paragraph of advice to its zip errors.
        reason = str(e).strip().splitlines()[0].split(". ")[0][:120] if str(e).strip() else type(e).__name__
        raise WeightsError(f"{path}: not a readable TorchScript file ({reason})") from None
    if extra[EXTRA_FILE]:
        meta = json.loads(extra[EXTRA_FILE])
        if meta.get("keypoints") != list(KEYPOINT_NAMES):
            raise WeightsError(f"{path}: its keypoints are not the 15 Kaggle keypoints in Kaggle order")
    model.eval()
    try:
        with torch.inference_mode():
            out = model(torch.full((2, 1, CROP_SIZE, CROP_SIZE), 0.5, device=device))
    except Exception as e:
        raise WeightsError(f"{path}: does not take (N, 1, 96, 96) crops ({type(e).__name__})") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, NUM_KEYPOINTS, 2):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise WeightsError(f"{path}: output is {shape}, expected (N, {NUM_KEYPOINTS}, 2)")
    if not torch.isfinite(out).all():
        raise WeightsError(f"{path}: gives NaN or infinite keypoints (damaged or diverged weights)")
    return model


def export_cascade(model: torch.nn.Module, path: str | Path) -> None:
    """Script an eval-mode cascade to `path` with its `keypoints.json` extra file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted = torch.jit.script(model.eval().cpu())
    tmp = path.with_suffix(".tmp")
    torch.jit.save(scripted, str(tmp), _extra_files={EXTRA_FILE: json.dumps(contract_metadata())})
    tmp.replace(path)
