"""Where a label source puts each point, against where people put it (human 300-W labels).

ytf68's labels are machine-made: against human labels their eyebrow inner ends sit too far apart, the
nose tip too low. `python -m train teacher-map --pts HUMAN_DIR ... --ytf68 DIR` measures that, per
point, with the teacher (MediaPipe, mapped to our points by a map fitted on human labels) as the
common yardstick: the median of (ytf68 label - teacher) over ytf68's training people, in the Kaggle
crop's pixels of a face aligned upright (similarity fit onto the mean shape). `fit --ytf68-offsets`
subtracts it from every ytf68 face, so that every source teaches one convention: the human one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kaggle_framing import KEYPOINT_NAMES, MEAN_SHAPE, NUM_KEYPOINTS, apply_affine, fit_similarity, invert_affine
from kaggle_framing.keypoints68 import DataError
from train.shipped import OFFSETS_FILE



def convention_offsets(labels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(15, 2) median of labels minus reference (both (N, 15, 2) image pixels) with each face aligned
    upright at the Kaggle scale; faces the reference missed (NaN) are left out."""
    ok = np.isfinite(reference).all(axis=(1, 2)) & np.isfinite(labels).all(axis=(1, 2))
    differences = []
    for truth, other in zip(labels[ok], reference[ok]):
        matrix = fit_similarity(truth, MEAN_SHAPE)
        differences.append(apply_affine(matrix, truth) - apply_affine(matrix, other))
    return np.median(np.stack(differences), axis=0).astype(np.float32)


def corrected(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(N, 15, 2) image points with the per-point offsets (aligned Kaggle crop pixels) taken out."""
    out = np.empty_like(points)
    for i, face in enumerate(points):
        matrix = fit_similarity(face, MEAN_SHAPE)
        out[i] = apply_affine(invert_affine(matrix), apply_affine(matrix, face) - offsets)
    return out


def save_offsets(path: Path, offsets: np.ndarray, how: str) -> None:
    """JSON: how they were measured, their units and one `"name": [x, y]` line a keypoint."""
    points = ",\n".join(f'  "{n}": [{x:.3f}, {y:.3f}]' for n, (x, y) in zip(KEYPOINT_NAMES, offsets.tolist()))
    units = "Kaggle crop pixels (96x96 framing), face aligned upright"
    Path(path).write_text(f'{{"how": {json.dumps(how)},\n "units": "{units}",\n "offsets": {{\n{points}\n }}\n}}\n')


def load_offsets(path: str | Path) -> np.ndarray:
    """(15, 2) offsets of a file `save_offsets` wrote."""
    try:
        table = json.loads(Path(path).read_text())["offsets"]
        offsets = np.array([table[name] for name in KEYPOINT_NAMES], np.float32)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a label offsets file ({e})") from None
    if offsets.shape != (NUM_KEYPOINTS, 2):
        raise DataError(f"{path}: expected an x, y pair for each of the {NUM_KEYPOINTS} keypoints")
    return offsets
