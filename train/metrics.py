"""Keypoint error metrics, NaN-aware (unlabelled coordinates are left out)."""
from __future__ import annotations

import numpy as np
import torch

from kaggle_framing import KEYPOINT_NAMES, interocular


def masked_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute error over the labelled coordinates only (NaN targets are gaps), each face
    counted with its `weight` (N,) when given."""
    mask = (~torch.isnan(target)).float()
    if weight is not None:
        mask = mask * weight.view(-1, 1, 1)
    return (pred - torch.nan_to_num(target)).abs().mul(mask).sum() / mask.sum().clamp(min=1e-6)


def presence_errors(presence: np.ndarray, is_face: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Share of faces scored below `threshold` (missed) and of non-faces at or above it (false)."""
    return {"presence_missed": float(np.mean(presence[is_face] < threshold)) if is_face.any() else float("nan"),
            "presence_false": float(np.mean(presence[~is_face] >= threshold)) if (~is_face).any() else float("nan")}


def keypoint_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """RMSE (crop pixels, over labelled coordinates, as Kaggle scores it), per-keypoint RMSE and
    NME (mean point distance over the outer-eye-corner distance; complete faces only)."""
    sq = (pred - target) ** 2  # (N, 15, 2)
    out = {"rmse": float(np.sqrt(np.nanmean(sq)))}
    for k, name in enumerate(KEYPOINT_NAMES):
        out[f"rmse_{name}"] = float(np.sqrt(np.nanmean(sq[:, k]))) if np.isfinite(sq[:, k]).any() else float("nan")
    complete = np.isfinite(target).all(axis=(1, 2))
    if complete.any():
        dist = np.linalg.norm(pred[complete] - target[complete], axis=-1).mean(axis=-1)
        out["nme"] = float(np.mean(dist / interocular(target[complete])))
    else:
        out["nme"] = float("nan")
    return out
