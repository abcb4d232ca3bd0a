"""Label conventions: per-point offsets between label sources, measured and taken out."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_framing import MEAN_SHAPE, NUM_KEYPOINTS, apply_affine
from kaggle_framing.keypoints68 import DataError
from train.conventions import OFFSETS_FILE, convention_offsets, corrected, load_offsets, save_offsets


def faces_at_random_poses(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 15, 2) noisy mean-shape faces in image pixels, each turned, scaled and moved, and the
    2x3 transforms that put them there (from the Kaggle crop)."""
    rng = np.random.default_rng(seed)
    faces, transforms = [], []
    for _ in range(n):
        angle, scale = np.radians(rng.uniform(-40, 40)), rng.uniform(0.5, 4)
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        matrix = np.array([[c, -s, rng.uniform(0, 500)], [s, c, rng.uniform(0, 500)]], np.float32)
        faces.append(apply_affine(matrix, MEAN_SHAPE + rng.normal(0, 0.3, MEAN_SHAPE.shape)))
        transforms.append(matrix)
    return np.stack(faces).astype(np.float32), np.stack(transforms)


def test_offsets_are_measured_in_the_upright_face_and_taken_out_at_any_pose():
    """A source that puts every point `shift` (upright Kaggle crop px) off the truth, on faces at any
    angle and size: the measured offsets are `shift`, and `corrected` brings the points back."""
    truth, transforms = faces_at_random_poses(200)
    shift = np.random.default_rng(1).normal(0, 1.5, (NUM_KEYPOINTS, 2)).astype(np.float32)
    shift -= shift.mean(axis=0)  # (a shift of the whole face is the alignment's to absorb)
    # the biased source: each face's points moved by `shift` rotated and scaled as that face is
    biased = np.stack([t + shift @ m[:, :2].T for t, m in zip(truth, transforms)])
    measured = convention_offsets(biased, truth)
    np.testing.assert_allclose(measured, shift, atol=0.15)
    back = corrected(biased, measured)
    scale = np.linalg.norm(transforms[:, :, 0], axis=1)[:, None, None]
    assert (np.abs(back - truth) / scale).max() < 0.25  # within a quarter of a crop pixel
    assert (np.abs(biased - truth) / scale).max() > 1.0


def test_faces_the_reference_missed_are_left_out():
    truth, _ = faces_at_random_poses(20)
    reference = truth.copy()
    reference[:5] = np.nan
    np.testing.assert_allclose(convention_offsets(truth + 0.0, reference), 0, atol=1e-4)


def test_offsets_file_round_trip_and_errors(tmp_path):
    offsets = np.arange(2 * NUM_KEYPOINTS, dtype=np.float32).reshape(NUM_KEYPOINTS, 2) / 10
    save_offsets(tmp_path / "o.json", offsets, "a test")
    np.testing.assert_allclose(load_offsets(tmp_path / "o.json"), offsets, atol=1e-3)
    (tmp_path / "bad.json").write_text('{"offsets": {"nose_tip": [1, 2]}}')
    with pytest.raises(DataError, match="not a label offsets file"):
        load_offsets(tmp_path / "bad.json")
    with pytest.raises(DataError, match="not a label offsets file"):
        load_offsets(tmp_path / "missing.json")


def test_the_shipped_offsets_file_reads():
    """The measured ytf68 -> human offsets that `fit` uses by default: present, and a few crop pixels
    at most (the conventions differ by point, not by a whole face)."""
    offsets = load_offsets(OFFSETS_FILE)
    assert np.isfinite(offsets).all() and np.abs(offsets).max() < 6
