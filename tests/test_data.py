"""Reading the Kaggle CSV files and 68-point folders; the identity split."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_framing import MEAN_SHAPE
from train.data import (
    CANVAS, CANVAS_MARGIN, DataError, KeypointDataset, kaggle_faces, read_kaggle_csv, split_by_group, ytf68_faces,
)
from train.augment import eval_transform


def test_read_kaggle_training_csv(kaggle_training):
    images, keypoints, ids = read_kaggle_csv(kaggle_training.path)
    n = len(kaggle_training.labels)
    assert images.shape == (n, 96, 96) and images.dtype == np.uint8
    assert keypoints.shape == (n, 15, 2) and keypoints.dtype == np.float32
    assert ids == [str(i) for i in range(1, n + 1)]
    np.testing.assert_array_equal(images, kaggle_training.images)  # pixels round-trip
    flat = keypoints.reshape(n, 30)
    np.testing.assert_array_equal(np.isnan(flat), np.isnan(kaggle_training.labels))  # gaps stay gaps
    np.testing.assert_allclose(flat, kaggle_training.labels, atol=1e-4)


def test_fixture_has_real_label_gaps(kaggle_training):
    labelled = (~np.isnan(kaggle_training.labels)).sum(axis=1)
    assert (labelled == 30).sum() >= 1
    assert (labelled == 8).sum() >= 1  # the 4-keypoint rows of the real file
    assert ((labelled != 8) & (labelled != 30)).sum() >= 1


def test_read_kaggle_test_csv(kaggle_test):
    images, keypoints, ids = read_kaggle_csv(kaggle_test.test_csv)
    assert images.shape == (3, 96, 96)
    np.testing.assert_array_equal(images, kaggle_test.images)
    assert np.isnan(keypoints).all()
    assert ids == ["1", "2", "3"]


def rewrite_line(path, line_number: int, edit) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line_number - 1] = edit(lines[line_number - 1])
    path.write_text("".join(lines))


def test_row_with_wrong_field_count_names_the_line(kaggle_training):
    # Line 4 (the third data row) loses its first field.
    rewrite_line(kaggle_training.path, 4, lambda line: line.split(",", 1)[1])
    with pytest.raises(DataError, match=r":4: 30 fields, expected 31"):
        read_kaggle_csv(kaggle_training.path)


def test_image_with_wrong_pixel_count(kaggle_training):
    rewrite_line(kaggle_training.path, 3, lambda line: line.rstrip("\n").rsplit(" ", 10)[0] + "\n")
    with pytest.raises(DataError, match=r":3: Image has 9206 pixels, expected 9216"):
        read_kaggle_csv(kaggle_training.path)


def test_non_numeric_keypoint_value(kaggle_training):
    rewrite_line(kaggle_training.path, 2, lambda line: "abc," + line.split(",", 1)[1])
    with pytest.raises(DataError, match=r":2: a keypoint value is not a number"):
        read_kaggle_csv(kaggle_training.path)


def test_file_without_image_column(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("left_eye_center_x,left_eye_center_y\n1,2\n")
    with pytest.raises(DataError, match="no 'Image' column"):
        read_kaggle_csv(path)


def test_kaggle_faces_pad_the_crop(kaggle_training):
    faces = kaggle_faces(kaggle_training.path)
    m = CANVAS_MARGIN
    assert faces.canvases.shape == (len(kaggle_training.labels), CANVAS, CANVAS)
    np.testing.assert_array_equal(faces.canvases[:, m:-m, m:-m], kaggle_training.images)
    np.testing.assert_allclose(faces.keypoints.reshape(-1, 30) - m, kaggle_training.labels, atol=1e-4)
    assert len(np.unique(faces.groups)) == len(faces)  # no identities: one group per row
    # The evaluation view of a canvas is the original crop with the original labels.
    image, points, weight = KeypointDataset(faces, eval_transform())[0]
    assert weight == 1.0
    np.testing.assert_allclose(image[0].numpy() * 255, kaggle_training.images[0], atol=1e-3)
    np.testing.assert_allclose(points.numpy().reshape(30), kaggle_training.labels[0], atol=1e-4)


def test_ytf68_faces(ytf68_small):
    faces = ytf68_faces(ytf68_small)
    assert faces.canvases.shape == (12, CANVAS, CANVAS) and faces.canvases.dtype == np.uint8
    assert faces.keypoints.shape == (12, 15, 2) and not np.isnan(faces.keypoints).any()
    assert len(np.unique(faces.groups)) == 4
    target = MEAN_SHAPE + CANVAS_MARGIN
    # Scale + shift least squares onto the mean shape: centroid and spread match it exactly...
    np.testing.assert_allclose(faces.keypoints.mean(axis=1), np.broadcast_to(target.mean(axis=0), (12, 2)), atol=1e-3)
    spread = np.sqrt(((faces.keypoints - faces.keypoints.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2)))
    np.testing.assert_allclose(spread, np.sqrt(((target - target.mean(axis=0)) ** 2).sum()), rtol=1e-4)
    # ... and each point lands near its mean position (faces differ, conventions differ by 1-3 px).
    assert np.abs(faces.keypoints.mean(axis=0) - target).max() < 5.0
    distance = np.linalg.norm(faces.keypoints - target, axis=-1)
    assert np.median(distance) < 4.0 and distance.max() < 20.0  # a turned head or open mouth moves some more
    # Real image content, not the replicated border of a failed warp.
    assert all(c[CANVAS_MARGIN:-CANVAS_MARGIN, CANVAS_MARGIN:-CANVAS_MARGIN].std() > 10 for c in faces.canvases)


def test_ytf68_missing_image(ytf68_small):
    next((ytf68_small / "images").rglob("*.jpg")).unlink()
    with pytest.raises(DataError, match="missing or not an image"):
        ytf68_faces(ytf68_small)


@pytest.mark.parametrize("fraction", [0.15, 0.25, 0.5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_by_group_keeps_identities_on_one_side(fraction, seed):
    rng = np.random.default_rng(seed)
    groups = np.array([f"person{i}" for i in rng.integers(0, 20, 200)])
    train, val = split_by_group(groups, fraction, seed)
    assert len(np.intersect1d(train, val)) == 0
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(len(groups)))
    assert not set(groups[train]) & set(groups[val])
    names = np.unique(groups)
    assert len(set(groups[val])) == int(round(fraction * len(names)))
    # Deterministic for a seed.
    again = split_by_group(groups, fraction, seed)
    np.testing.assert_array_equal(again[1], val)


def test_split_by_group_on_ytf68(ytf68_small):
    faces = ytf68_faces(ytf68_small)
    for seed in range(5):
        train, val = split_by_group(faces.groups, 0.25, seed)
        assert len(val) == 3 and len(train) == 9
        assert not set(faces.groups[train]) & set(faces.groups[val])
