"""kaggle_framing/crop.py with the kaggle_framing transforms: a frame pixel lands in the 96x96 crop where the
framing matrix says it does, on both the direct and the pyrDown (big face) paths; and the small
transform helpers the tracker builds on (invert_affine, HaarDetector.framing_from_box <-> box_from_framing)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from kaggle_framing import (
    CROP_SIZE, KEYPOINT_NAMES, MEAN_SHAPE, apply_affine, framing_transform, invert_affine,
)
from kaggle_framing.crop import warp_crop
from tracker.haar_detector import HaarDetector

# Keypoints far enough apart in the crop (>= 19 px) to measure each dot's centre on its own.
SPREAD = [KEYPOINT_NAMES.index(n) for n in (
    "left_eye_center", "right_eye_center", "nose_tip", "mouth_left_corner", "mouth_right_corner",
)]


def similarity(scale: float, angle_deg: float, shift: tuple[float, float]) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    c, s = scale * np.cos(t), scale * np.sin(t)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def face_points(scale: float, roll: float, centre: tuple[float, float]) -> np.ndarray:
    """The 15 Kaggle points of a face `scale` times the crop size, rolled by `roll` degrees, whose crop
    centre sits at `centre` in the frame."""
    crop_to_frame = similarity(scale, roll, (0.0, 0.0))
    centre_now = apply_affine(crop_to_frame, np.array([CROP_SIZE / 2, CROP_SIZE / 2]))
    crop_to_frame[:, 2] = np.asarray(centre) - centre_now
    return apply_affine(crop_to_frame, MEAN_SHAPE.astype(np.float64))


def dots(shape: tuple[int, int], points: np.ndarray, sigma: float) -> np.ndarray:
    """A dark uint8 frame with a bright Gaussian dot centred (to sub-pixel precision) on each point."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    image = np.zeros(shape, np.float64)
    for x, y in points:
        image = np.maximum(image, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return np.round(20 + 215 * image).astype(np.uint8)


def dot_centre(crop: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    """Intensity centroid of the dot around `near` (crop pixels), the background taken off."""
    x0, y0 = np.round(near).astype(int) - radius
    patch = crop[y0 : y0 + 2 * radius + 1, x0 : x0 + 2 * radius + 1].astype(np.float64)
    weight = np.clip(patch - 20 - 0.1 * (patch.max() - 20), 0, None)  # background and the faint tails off
    assert weight.sum() > 0, f"no dot near {near}"
    yy, xx = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum() + [x0, y0]


def crop_scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


# (face scale in frame px per crop px, roll in degrees, rotation argument, centre in a 640x480 frame)
CASES = {
    "small face, upsampled": (0.7, 0.0, False, (200.0, 150.0)),
    "medium face": (1.6, 0.0, False, (300.0, 240.0)),
    "large face, pyrDown once": (3.1, 0.0, False, (320.0, 240.0)),
    "large face, pyrDown twice": (4.6, 0.0, False, (320.0, 240.0)),
    "rotated framing": (1.6, 28.0, True, (330.0, 250.0)),
    "rotated large face, pyrDown": (3.4, -22.0, True, (310.0, 235.0)),
    "large face cut by the frame corner": (3.0, 10.0, True, (510.0, 370.0)),
    "unrotated framing of a rolled face": (2.5, 15.0, False, (320.0, 240.0)),
}


@pytest.mark.parametrize("scale, roll, rotation, centre", list(CASES.values()), ids=list(CASES))
def test_keypoint_dots_land_where_the_framing_says(scale, roll, rotation, centre):
    points = face_points(scale, roll, centre)
    matrix = framing_transform(points, rotation=rotation)
    if rotation or roll == 0.0:  # an exact fit: the points frame onto the mean shape itself
        np.testing.assert_allclose(apply_affine(matrix, points), MEAN_SHAPE, atol=0.02)
    assert (crop_scale(matrix) < 0.5) == (scale > 2.0)  # the cases cover both paths of warp_crop
    frame = dots((480, 640), points[SPREAD], sigma=1.2 * max(scale, 1.0))
    crop = warp_crop(frame, matrix)
    assert crop.shape == (CROP_SIZE, CROP_SIZE) and crop.dtype == np.uint8
    for p in points[SPREAD]:
        expected = apply_affine(matrix, p)
        found = dot_centre(crop, expected)
        assert np.linalg.norm(found - expected) <= 1.0, f"dot at {found}, expected {expected}"


@pytest.mark.parametrize("scale, roll, rotation, centre", list(CASES.values()), ids=list(CASES))
def test_dots_anywhere_in_the_crop_land_where_the_framing_says(scale, roll, rotation, centre):
    # A 3x3 grid spanning the crop (to 10 px from its edges), placed in the frame through the inverse.
    matrix = framing_transform(face_points(scale, roll, centre), rotation=rotation)
    grid = np.array([[x, y] for y in (10.0, 48.3, 85.6) for x in (10.4, 47.7, 85.0)])
    frame_points = apply_affine(invert_affine(matrix), grid)
    sigma = 1.2 * max(scale, 1.0)
    inside = ((frame_points >= 3 * sigma) & (frame_points <= np.array([639, 479]) - 3 * sigma)).all(axis=1)
    assert inside.sum() >= 4  # the corner case loses some of the grid off the frame
    crop = warp_crop(dots((480, 640), frame_points[inside], sigma), matrix)
    for expected in grid[inside]:
        found = dot_centre(crop, expected, radius=5)
        assert np.linalg.norm(found - expected) <= 1.0, f"dot at {found}, expected {expected}"


def test_pyrdown_path_matches_a_blurred_direct_warp():
    # The decimated crop is the same picture as a direct warp of a pre-blurred frame (no shift, no flip).
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (480, 640), dtype=np.uint8), (0, 0), 6)
    matrix = framing_transform(face_points(4.0, 12.0, (320, 240)), rotation=True)
    assert crop_scale(matrix) < 0.5
    direct = cv2.warpAffine(frame, matrix.astype(np.float64), (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
    pyramid = warp_crop(frame, matrix)
    inner = (slice(4, -4), slice(4, -4))
    diff = np.abs(pyramid[inner].astype(int) - direct[inner].astype(int))
    assert diff.mean() < 3.0, diff.mean()


@pytest.mark.parametrize("shape", [(480, 640), (40, 30), (5, 5), (1, 1)])
def test_huge_or_off_frame_faces_still_give_a_crop(shape):
    gray = np.full(shape, 90, np.uint8)
    for matrix in (
        framing_transform(face_points(40.0, 5.0, (shape[1] / 2, shape[0] / 2)), rotation=True),  # scale 1/40
        framing_transform(face_points(2.0, 0.0, (-500.0, -500.0))),  # entirely outside the frame
        framing_transform(face_points(0.3, 0.0, (shape[1] + 90.0, 10.0))),
    ):
        crop = warp_crop(gray, matrix)
        assert crop.shape == (CROP_SIZE, CROP_SIZE) and crop.dtype == np.uint8
        assert (crop == 90).all()  # a flat frame stays flat: borders repeat the frame's edge


@pytest.mark.parametrize(
    "matrix",
    [
        similarity(0.37, 0.0, (12.5, -40.0)),
        similarity(2.4, 33.0, (-300.0, 17.0)),
        similarity(0.05, -80.0, (48.0, 48.0)),
        np.array([[1.3, 0.2, 5.0], [-0.4, 0.7, -9.0]]),  # a general affine
    ],
)
def test_invert_affine_round_trips(matrix):
    matrix = matrix.astype(np.float32)
    inverse = invert_affine(matrix)
    np.testing.assert_allclose(inverse, cv2.invertAffineTransform(matrix), rtol=1e-4, atol=1e-3)
    points = np.random.default_rng(1).uniform(-100, 700, (20, 2))
    np.testing.assert_allclose(apply_affine(inverse, apply_affine(matrix, points)), points, atol=0.02)
    np.testing.assert_allclose(apply_affine(matrix, apply_affine(inverse, points)), points, atol=0.02)
    np.testing.assert_allclose(invert_affine(inverse), matrix, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    "box", [(0.0, 0.0, 100.0, 100.0), (145.4, 101.8, 128.7, 128.7), (-20.0, 300.5, 37.0, 37.0), (1000.0, 12.0, 812.5, 812.5)]
)
@pytest.mark.parametrize("angle", [0.0, 20.0, -45.0, 90.0])
def test_box_from_framing_inverts_framing_from_box(box, angle):
    # Haar boxes are square; the Kaggle crop of a box is a square too; a candidate's angle turns the
    # crop about the box, which stays where it was.
    framing = HaarDetector.framing_from_box((*box, angle))
    np.testing.assert_allclose(HaarDetector.box_from_framing(framing), box, rtol=1e-5, atol=0.01)


def test_box_framing_puts_the_box_centre_near_the_crop_centre():
    box = np.array([200.0, 100.0, 150.0, 150.0])
    framing = HaarDetector.framing_from_box(box)
    centre = apply_affine(framing, box[:2] + box[2:] / 2)
    np.testing.assert_allclose(centre, [CROP_SIZE / 2, CROP_SIZE / 2], atol=0.03 * CROP_SIZE)
    np.testing.assert_allclose(crop_scale(framing) * box[2], CROP_SIZE, rtol=0.05)  # the box fills the crop
