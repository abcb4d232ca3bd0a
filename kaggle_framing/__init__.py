"""The contract shared by `tracker/` (run time) and `train/` (offline): both import it, it imports
neither. The tracker never imports train/; train/ uses only the library's face detectors
(`tracker.haar_detector`: mining its false positives; `tracker.detectors`: calibrating a detector's
framing), never the application (`tracker.app`) or benchmarks/.

Here: keypoint names and order, the Kaggle 96x96 framing of a face, the iBUG-68 -> Kaggle-15 mapping,
the similarity fits that move points between an image and the crop, and mirror averaging
(`from_mirror`, `mirror_average`), NumPy only. Beside it:
`crop` (the framed crop cut out of a frame), `weights_contract` (the cascade files, TorchScript and
its ONNX twin) and `keypoints68` (the 68-point label folders). None of them imports torch.

The framing is the mean shape of the 2140 fully labelled rows of Kaggle's training.csv
(`../shared/data/kaggle/training_labels.csv`), mirrored (pixel i -> 95 - i) and averaged so that a horizontal flip maps
the framing onto itself. `tests/test_kaggle_framing.py` recomputes it from that file.
"""
from __future__ import annotations

import math

import numpy as np

CROP_SIZE = 96

KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
# The 30 Kaggle CSV columns: name_x, name_y for each keypoint, in order.
COLUMNS: tuple[str, ...] = tuple(f"{n}_{axis}" for n in KEYPOINT_NAMES for axis in "xy")


def _mirror_name(name: str) -> str:
    if name.startswith("left_") or name.startswith("mouth_left"):
        return name.replace("left", "right")
    return name.replace("right", "left")


# FLIP_PERMUTATION[i] is the keypoint that point i becomes in a horizontally mirrored image
# (Kaggle's "left" is the subject's left: mirroring the image swaps left and right).
FLIP_PERMUTATION: tuple[int, ...] = tuple(KEYPOINT_NAMES.index(_mirror_name(n)) for n in KEYPOINT_NAMES)

# Mean of the 2140 complete Kaggle rows, symmetrised about x = 47.5 (see module docstring).
MEAN_SHAPE = np.array(
    [
        [65.791, 36.953], [29.209, 36.953], [58.835, 37.888], [73.025, 37.837],
        [36.165, 37.888], [21.975, 37.837], [55.938, 29.318], [79.428, 30.055],
        [39.062, 29.318], [15.572, 30.055], [47.500, 57.254], [62.726, 76.011],
        [32.274, 76.011], [47.500, 72.681], [47.500, 82.630],
    ],
    dtype=np.float32,
)
OUTER_EYE_CORNERS = (KEYPOINT_NAMES.index("left_eye_outer_corner"), KEYPOINT_NAMES.index("right_eye_outer_corner"))

# iBUG-68 (0-based) -> Kaggle-15: each Kaggle point is the mean of these iBUG points.
IBUG68_TO_KAGGLE: tuple[tuple[int, ...], ...] = (
    (42, 43, 44, 45, 46, 47), (36, 37, 38, 39, 40, 41), (42,), (45,), (39,), (36,),
    (22,), (26,), (21,), (17,), (30,), (54,), (48,), (51,), (57,),
)

# Coordinates are OpenCV's everywhere: x right, y down, pixel centres at integers counted from 0, in
# crop pixels here and frame pixels at run time. Label sources that count otherwise are converted when
# read (`keypoints68.IBUG_ORIGIN`). So mirroring a crop maps x -> CROP_MIRROR_AXIS - x exactly, with the
# left/right names swapped (FLIP_PERMUTATION).
CROP_MIRROR_AXIS = CROP_SIZE - 1

def from_mirror(points: np.ndarray, axis: float | np.ndarray = CROP_MIRROR_AXIS) -> np.ndarray:
    """(..., 15, 2) points found on horizontally mirrored images -> the same points on the images: the
    left/right names swapped, x -> axis - x (`axis`: the image's width - 1; per image, an (N, 1) array)."""
    back = points[..., list(FLIP_PERMUTATION), :]
    back[..., 0] = axis - back[..., 0]
    return back


def mirror_average(plain: np.ndarray, mirrored: np.ndarray,
                   axis: float | np.ndarray = CROP_MIRROR_AXIS) -> tuple[np.ndarray, np.ndarray]:
    """The mean of (..., 15, 2) answers on images and on their mirror images (mapped back), and how far
    apart the two are (mean distance over the points: how sure the answer is)."""
    back = from_mirror(mirrored, axis)
    return (plain + back) / 2, np.linalg.norm(plain - back, axis=-1).mean(axis=-1)


def kaggle_from_ibug68(points68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) iBUG points -> (..., 15, 2) Kaggle points."""
    return np.stack([points68[..., list(idx), :].mean(axis=-2) for idx in IBUG68_TO_KAGGLE], axis=-2)


def _centred(points: np.ndarray) -> tuple[np.ndarray, complex]:
    """(K, 2) points as complex numbers z = x + iy about their mean, and the mean."""
    z = np.asarray(points, np.float64)
    z = z[:, 0] + 1j * z[:, 1]
    mean = z.sum() / len(z)  # = mean(), without its per-call overhead
    return z - mean, mean


def _fit_terms(dst: np.ndarray) -> tuple[np.ndarray, complex, float]:
    """What a fit onto `dst` needs of it: the (2K, 4) matrix that takes source points, flattened
    (x0, y0, x1, ...), to <s, d> (real, imaginary; d: dst about its mean) and the sums of their x
    and y; dst's mean as x + iy; and the sum of |d|^2."""
    d, mean = _centred(dst)
    terms = np.zeros((2 * len(d), 4))
    terms[0::2, 0], terms[1::2, 0] = d.real, d.imag  # Re <s, d> = sum(x dx + y dy)
    terms[0::2, 1], terms[1::2, 1] = d.imag, -d.real  # Im <s, d> = sum(x dy - y dx)
    terms[0::2, 2] = terms[1::2, 3] = 1.0
    return terms, complex(mean), float((d.real**2 + d.imag**2).sum())


_MEAN_SHAPE_TERMS = _fit_terms(MEAN_SHAPE)  # the usual target, worked out once (two fits a face a frame)


def fit_similarity(src: np.ndarray, dst: np.ndarray, rotation: bool = True) -> np.ndarray:
    """Least-squares 2x3 transform taking `src` points (K x 2) onto `dst` (K x 2).

    With `rotation` it is a full similarity (Umeyama); without, only scale and shift, which is how
    the Kaggle images are framed (upright faces, never de-rotated). NaN rows in `src` are ignored.
    """
    src = np.asarray(src, np.float64)
    if np.isnan(src).any():
        ok = ~np.isnan(src).any(axis=1)
        src, dst = src[ok], np.asarray(dst)[ok]
    if len(src) < 2:
        return np.full((2, 3), np.nan, np.float32)
    # As complex numbers z = x + iy the fit is one division: a + ib = <s, d> / <s, s> (a = scale * cos,
    # s and d about their means); its sums come from one product with dst's terms, on Python floats
    # after that (two fits a face a frame: numpy's per-call overhead was most of their time).
    terms, d_mean, d_var = _MEAN_SHAPE_TERMS if dst is MEAN_SHAPE else _fit_terms(dst)
    v = src.reshape(-1)
    re, im, sum_x, sum_y = (v @ terms).tolist()
    n = len(src)
    mx, my = sum_x / n, sum_y / n
    var = float(v @ v) - n * (mx * mx + my * my)
    if not var > 0:  # every point in one place: no transform
        return np.full((2, 3), np.nan, np.float32)
    a, b = (re / var, im / var) if rotation else (math.sqrt(d_var / var), 0.0)
    tx, ty = d_mean.real - (a * mx - b * my), d_mean.imag - (b * mx + a * my)
    return np.array([[a, -b, tx], [b, a, ty]], np.float32)


def framing_transform(points: np.ndarray, rotation: bool = False) -> np.ndarray:
    """2x3 transform from image coordinates to the 96x96 Kaggle crop that frames these 15 points."""
    return fit_similarity(points, MEAN_SHAPE, rotation=rotation)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine transform to (..., 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine transform."""
    (a, b, tx), (c, d, ty) = np.asarray(matrix, np.float64).tolist()  # Python floats: numpy scalars are slow
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]], np.float32)


def interocular(points: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance of (..., 15, 2) points: the normaliser of NME."""
    a, b = OUTER_EYE_CORNERS
    return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)
