"""The weights contract: what a cascade file takes and gives, and its ONNX twin.

- `cascade.pt`, TorchScript: `torch.jit.load(path)` alone loads it. Input float32 (N, 1, 96, 96) in
  [0, 1], a face in the Kaggle framing; output float32 (N, 15, 2) crop pixels in Kaggle keypoint
  order. It may also export `with_presence(x) -> (points, presence)`, presence (N,) the probability
  that the crop holds a face; without it presence is unknown (taken as 1); and `answers(x) ->
  (points, presence, disagreement)`, where the points are the mean of the answers on the crop and on
  its mirror image and disagreement (N,) how far apart those two are (crop px). The extra file
  `keypoints.json` records the names and framing so that a reader can check what it loaded.
- `cascade.onnx`, its twin beside it: the same weights for onnxruntime (the CPU runtime, no torch).
  Input `crops`, outputs `keypoints` and, when the TorchScript module has `with_presence`,
  `presence`, and when it has `answers`, `disagreement`; its metadata holds the same `keypoints.json` and the sha256 of the .pt it came from,
  so that a twin left behind by a new .pt is known as stale.

NumPy only at import: `load_torchscript` imports torch when it is called, never before.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from kaggle_framing import CROP_SIZE, KEYPOINT_NAMES, MEAN_SHAPE, NUM_KEYPOINTS

EXTRA_FILE = "keypoints.json"
INPUT = "crops"
KEYPOINTS = "keypoints"
PRESENCE = "presence"
DISAGREEMENT = "disagreement"
SOURCE_SHA256 = "source_sha256"  # ONNX metadata: sha256 of the TorchScript file it was exported from
# The shipped weights: the `weights` folder beside this package, in a checkout and once installed
# alike (pyproject.toml installs it as package data), wherever the program is run from.
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "cascade.pt"


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


def answers_on_mirror(model) -> bool:
    """Whether a loaded cascade averages each crop's answer with its mirror image's, and so has
    `answers(x) -> (points, presence, disagreement)` (its `mirror` constant is true)."""
    return hasattr(model, "answers") and bool(getattr(model, "mirror", False))


def check_metadata(text: str, path: str | Path) -> None:
    """A recorded `keypoints.json` (empty: none recorded) must name the 15 Kaggle keypoints in order."""
    if not text:
        return
    try:
        names = json.loads(text).get("keypoints")
    except (ValueError, AttributeError):
        raise WeightsError(f"{path}: its {EXTRA_FILE} is not readable JSON") from None
    if names != list(KEYPOINT_NAMES):
        raise WeightsError(f"{path}: its keypoints are not the 15 Kaggle keypoints in Kaggle order")


def check_is_file(path: Path) -> None:
    if path.is_dir():
        raise WeightsError(f"{path}: is a folder; give the weights file (a .pt file) itself")
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")


def dry_run_crops() -> np.ndarray:
    """The (2, 1, 96, 96) batch a loader runs once to check a file's answers."""
    return np.full((2, 1, CROP_SIZE, CROP_SIZE), 0.5, np.float32)


def check_answers(path: str | Path, points: np.ndarray, presence: np.ndarray | None, n: int) -> None:
    """The answers to `n` crops: (n, 15, 2) finite points, and presence (n,) in [0, 1] if any."""
    if points.shape != (n, NUM_KEYPOINTS, 2):
        raise WeightsError(f"{path}: output is {tuple(points.shape)}, expected (N, {NUM_KEYPOINTS}, 2)")
    if not np.isfinite(points).all():
        raise WeightsError(f"{path}: gives NaN or infinite keypoints (damaged or diverged weights)")
    if presence is not None and (presence.shape != (n,) or not ((presence >= 0) & (presence <= 1)).all()):
        raise WeightsError(f"{path}: presence is not (N,) probabilities in [0, 1]")


def first_line(error: BaseException) -> str:
    """The first sentence of a library's error: torch and onnxruntime append paragraphs of advice."""
    text = str(error).strip()
    return text.splitlines()[0].split(". ")[0][:120] if text else type(error).__name__


def twin_path(weights: str | Path) -> Path:
    """Where the ONNX twin of a TorchScript file lives: beside it, `.onnx` for `.pt`."""
    return Path(weights).with_suffix(".onnx")


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_torchscript(path: str | Path, device="cpu"):
    """Load a TorchScript cascade on `device` in eval mode, its contract checked by a dry run."""
    import torch  # here, not at the top: the CPU runtime never pays for it

    # TorchScript is the weights format by contract; its deprecation notices are noise to our users.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
    path = Path(path)
    check_is_file(path)
    extra = {EXTRA_FILE: ""}
    try:
        model = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as e:  # torch raises RuntimeError, ValueError, zipfile errors... for bad files
        raise WeightsError(f"{path}: not a readable TorchScript file ({first_line(e)})") from None
    check_metadata(extra[EXTRA_FILE], path)
    model.eval()
    x = torch.from_numpy(dry_run_crops()).to(device)
    try:
        with torch.inference_mode():
            out = model.with_presence(x) if hasattr(model, "with_presence") else (model(x), None)
    except Exception as e:
        raise WeightsError(f"{path}: does not take (N, 1, 96, 96) crops ({type(e).__name__})") from None
    if not isinstance(out, tuple) or not all(isinstance(t, torch.Tensor) or t is None for t in out):
        raise WeightsError(f"{path}: output is {type(out[0]).__name__}, expected (N, {NUM_KEYPOINTS}, 2)")
    points, presence = (t if t is None else t.float().cpu().numpy() for t in out)
    check_answers(path, points, presence, len(x))
    return model
