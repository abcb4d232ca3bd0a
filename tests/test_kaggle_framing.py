"""The shared framing contract: mean shape, flip permutation, similarity fits, 68 -> 15 mapping."""
from __future__ import annotations

import numpy as np
import pytest

import kaggle_framing as kf
from tests.helpers import ROOT


def test_mean_shape_is_recomputed_from_the_real_labels(real_labels):
    assert real_labels.shape == (7049, 30)
    assert (~np.isnan(real_labels).any(axis=1)).sum() == 2140
    complete = real_labels[~np.isnan(real_labels).any(axis=1)].reshape(-1, kf.NUM_KEYPOINTS, 2)
    mean = complete.mean(axis=0)
    symmetric = (mean + kf.from_mirror(mean)) / 2
    np.testing.assert_allclose(symmetric, kf.MEAN_SHAPE, atol=0.01)


def test_mean_shape_is_mirror_symmetric():
    np.testing.assert_allclose(kf.from_mirror(kf.MEAN_SHAPE), kf.MEAN_SHAPE, atol=1e-3)


def test_columns_follow_keypoint_order():
    assert len(kf.COLUMNS) == 30
    assert kf.COLUMNS[:4] == ("left_eye_center_x", "left_eye_center_y", "right_eye_center_x", "right_eye_center_y")
    assert kf.COLUMNS[-1] == "mouth_center_bottom_lip_y"


def test_flip_permutation_is_an_involution_that_swaps_left_and_right():
    perm = kf.FLIP_PERMUTATION
    assert sorted(perm) == list(range(kf.NUM_KEYPOINTS))
    assert [perm[perm[i]] for i in range(kf.NUM_KEYPOINTS)] == list(range(kf.NUM_KEYPOINTS))
    names = kf.KEYPOINT_NAMES
    for i, name in enumerate(names):
        partner = names[perm[i]]
        if "left" in name:
            assert partner == name.replace("left", "right")
        elif "right" in name:
            assert partner == name.replace("right", "left")
        else:  # nose tip and the lip centres lie on the symmetry axis
            assert partner == name
    assert names[perm[names.index("left_eye_center")]] == "right_eye_center"
    assert names[perm[names.index("mouth_left_corner")]] == "mouth_right_corner"


def similarity(scale: float, angle_deg: float, shift: tuple[float, float]) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    c, s = scale * np.cos(t), scale * np.sin(t)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


@pytest.mark.parametrize("angle", [0.0, 17.0, -35.0])
def test_fit_similarity_recovers_a_known_transform(angle):
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, (15, 2))
    truth = similarity(0.43, angle, (12.5, -7.25))
    dst = kf.apply_affine(truth, src)
    np.testing.assert_allclose(kf.fit_similarity(src, dst, rotation=True), truth, atol=1e-4)
    if angle == 0.0:  # scale + shift only: exact for an unrotated similarity
        np.testing.assert_allclose(kf.fit_similarity(src, dst, rotation=False), truth, atol=1e-4)
    else:  # ... and never rotates
        m = kf.fit_similarity(src, dst, rotation=False)
        assert m[0, 1] == 0 and m[1, 0] == 0 and m[0, 0] == m[1, 1] > 0


@pytest.mark.parametrize("angle", [0.0, 25.0, -160.0])
def test_fit_onto_the_mean_shape_recovers_a_known_transform(angle):
    """The mean shape, the usual target, has its own precomputed terms: the same answer as any other."""
    truth = similarity(2.6, angle, (-310.0, 1205.5))
    src = kf.apply_affine(kf.invert_affine(truth), kf.MEAN_SHAPE)
    np.testing.assert_allclose(kf.fit_similarity(src, kf.MEAN_SHAPE), truth, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(kf.fit_similarity(src, kf.MEAN_SHAPE.copy()), truth, rtol=1e-5, atol=1e-3)


def test_fit_similarity_of_points_in_one_place_is_nan_not_an_error():
    assert np.isnan(kf.fit_similarity(np.full((15, 2), 7.0), kf.MEAN_SHAPE)).all()
    assert np.isnan(kf.fit_similarity(np.full((15, 2), np.nan), kf.MEAN_SHAPE)).all()


def test_fit_similarity_ignores_nan_source_points():
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 100, (15, 2))
    truth = similarity(1.7, 10.0, (3.0, 4.0))
    dst = kf.apply_affine(truth, src)
    src[[2, 5, 9]] = np.nan
    np.testing.assert_allclose(kf.fit_similarity(src, dst), truth, atol=1e-4)


def test_invert_affine_round_trips():
    m = similarity(2.5, 30.0, (5.0, -9.0)).astype(np.float32)
    p = np.array([[1.0, 2.0], [30.0, -4.0]], dtype=np.float32)
    np.testing.assert_allclose(kf.apply_affine(kf.invert_affine(m), kf.apply_affine(m, p)), p, atol=1e-4)


def test_kaggle_from_ibug68_matches_the_readme_table():
    rng = np.random.default_rng(3)
    points68 = rng.uniform(0, 300, (2, 68, 2))  # a batch of two faces
    out = kf.kaggle_from_ibug68(points68)
    assert out.shape == (2, 15, 2)
    k = kf.KEYPOINT_NAMES.index
    np.testing.assert_allclose(out[:, k("left_eye_center")], points68[:, 42:48].mean(axis=1))
    np.testing.assert_allclose(out[:, k("right_eye_center")], points68[:, 36:42].mean(axis=1))
    table = {
        "left_eye_inner_corner": 42, "left_eye_outer_corner": 45, "right_eye_inner_corner": 39,
        "right_eye_outer_corner": 36, "left_eyebrow_inner_end": 22, "left_eyebrow_outer_end": 26,
        "right_eyebrow_inner_end": 21, "right_eyebrow_outer_end": 17, "nose_tip": 30, "mouth_left_corner": 54,
        "mouth_right_corner": 48, "mouth_center_top_lip": 51, "mouth_center_bottom_lip": 57,
    }
    for name, index in table.items():
        np.testing.assert_array_equal(out[:, k(name)], points68[:, index], err_msg=name)


def test_framing_transform_of_the_mean_shape_is_identity():
    identity = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    np.testing.assert_allclose(kf.framing_transform(kf.MEAN_SHAPE), identity, atol=1e-5)
    np.testing.assert_allclose(kf.framing_transform(kf.MEAN_SHAPE, rotation=True), identity, atol=1e-5)


def test_framing_transform_undoes_a_scale_and_shift():
    image_points = kf.MEAN_SHAPE * 3.2 + np.array([140.0, 55.0], dtype=np.float32)
    m = kf.framing_transform(image_points)
    np.testing.assert_allclose(kf.apply_affine(m, image_points), kf.MEAN_SHAPE, atol=1e-3)


def imported_modules(folder: str) -> dict[str, set[str]]:
    """Every module each file of `folder` imports from, at any depth of the code ("pkg.mod")."""
    import ast

    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module)
        found[path.relative_to(ROOT).as_posix()] = names
    return found


def test_imports_run_one_way():
    """The library (tracker/, less tracker/app/) never imports the application (tracker/app/), train/ or
    benchmarks/; train/ imports from tracker/ only the face detectors (to mine the Haar detector's own
    false positives, and to calibrate a detector's framing) and never benchmarks/; the contract imports none of them,
    and torch only inside `load_torchscript` (for the callers that have torch)."""
    def top(names: set[str]) -> set[str]:
        return {n.split(".")[0] for n in names}

    for name, names in imported_modules("tracker").items():
        assert not top(names) & {"train", "benchmarks"}, name
        if not name.startswith("tracker/app/"):
            assert not {n for n in names if n == "tracker.app" or n.startswith("tracker.app.")}, name
    for name, names in imported_modules("train").items():
        assert "benchmarks" not in top(names), name
        assert {n for n in names if n.split(".")[0] == "tracker"} <= {"tracker.haar_detector", "tracker.detectors"}, name
    for name, names in imported_modules("kaggle_framing").items():
        assert not top(names) & {"tracker", "train", "benchmarks"}, name
    code = (ROOT / "kaggle_framing" / "weights_contract.py").read_text()
    assert "\nimport torch" not in code and "\nfrom torch" not in code
