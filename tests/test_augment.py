"""Augmentation moves image and keypoints together; the masked loss ignores label gaps."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from kaggle_framing import CROP_SIZE, FLIP_PERMUTATION, KEYPOINT_NAMES, MEAN_SHAPE
from train.augment import MirrorWithSwap, eval_transform, jitter_canvases, train_transform
from train.data import CANVAS, CANVAS_MARGIN
from train.metrics import keypoint_metrics, masked_l1

K = KEYPOINT_NAMES.index


def keypoints(points: np.ndarray, size: int) -> tv_tensors.KeyPoints:
    return tv_tensors.KeyPoints(torch.as_tensor(points, dtype=torch.float32), canvas_size=(size, size))


def test_mirror_with_swap_flips_image_and_swaps_points():
    rng = np.random.default_rng(0)
    h, w = 40, 50
    image = tv_tensors.Image(torch.from_numpy(rng.integers(0, 256, (1, h, w), dtype=np.uint8)))
    old = rng.uniform(0, 39, (15, 2)).astype(np.float32)
    old[K("mouth_left_corner")] = np.nan  # gaps travel with their point
    new_image, new = MirrorWithSwap(p=1.0)(image, tv_tensors.KeyPoints(torch.from_numpy(old), canvas_size=(h, w)))
    assert isinstance(new, tv_tensors.KeyPoints) and new.canvas_size == (h, w)
    torch.testing.assert_close(new_image.as_subclass(torch.Tensor), image.as_subclass(torch.Tensor).flip(-1))
    new = new.as_subclass(torch.Tensor).numpy()
    assert new[K("left_eye_center"), 0] == pytest.approx(w - 1 - old[K("right_eye_center"), 0])
    assert new[K("left_eye_center"), 1] == pytest.approx(old[K("right_eye_center"), 1])
    assert new[K("right_eye_outer_corner"), 0] == pytest.approx(w - 1 - old[K("left_eye_outer_corner"), 0])
    assert new[K("nose_tip"), 0] == pytest.approx(w - 1 - old[K("nose_tip"), 0])
    expected = old[list(FLIP_PERMUTATION)].copy()
    expected[:, 0] = w - 1 - expected[:, 0]
    np.testing.assert_allclose(new, expected)
    assert np.isnan(new[K("mouth_right_corner")]).all() and not np.isnan(new[K("mouth_left_corner")]).any()


def test_mirror_of_the_mean_shape_is_the_mean_shape():
    image = tv_tensors.Image(torch.zeros(1, CROP_SIZE, CROP_SIZE, dtype=torch.uint8))
    _, points = MirrorWithSwap(p=1.0)(image, keypoints(MEAN_SHAPE, CROP_SIZE))
    np.testing.assert_allclose(points.as_subclass(torch.Tensor).numpy(), MEAN_SHAPE, atol=1e-3)


def test_mirror_with_swap_p0_is_identity():
    image = tv_tensors.Image(torch.arange(16, dtype=torch.uint8).view(1, 4, 4))
    points = keypoints(np.arange(30, dtype=np.float32).reshape(15, 2) / 10, 4)
    out_image, out_points = MirrorWithSwap(p=0.0)(image, points)
    assert torch.equal(out_image, image) and torch.equal(out_points, points)


# Three keypoints far apart, drawn as blobs on an off-centre face (so that a mirrored image with
# unmirrored points, or the reverse, cannot line up by symmetry).
DRAWN = ("left_eye_center", "nose_tip", "mouth_right_corner")
SHIFT = np.array([6.0, -4.0], dtype=np.float32)


def blob_canvas(points: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float64)
    canvas = np.zeros((CANVAS, CANVAS))
    for name in DRAWN:
        x, y = points[K(name)]
        canvas += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.6**2))
    return np.clip(canvas * 255, 0, 255).astype(np.uint8)


def blob_centres(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centres of the bright blobs of a float image."""
    background = np.median(image)
    excess = image - background
    mask = (excess > 0.3 * excess.max()).astype(np.uint8)
    n, labels = cv2.connectedComponents(mask, connectivity=8)
    centres = []
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    for i in range(1, n):
        wgt = np.where(labels == i, excess, 0.0)
        centres.append([(wgt * xx).sum() / wgt.sum(), (wgt * yy).sum() / wgt.sum()])
    return np.array(centres)


@pytest.mark.parametrize("seed", range(8))
def test_train_transform_moves_image_and_points_together(seed):
    points = MEAN_SHAPE + CANVAS_MARGIN + SHIFT
    canvas = tv_tensors.Image(torch.from_numpy(blob_canvas(points))[None])
    torch.manual_seed(seed)
    image, out = train_transform()(canvas, keypoints(points, CANVAS))
    assert image.shape == (1, CROP_SIZE, CROP_SIZE) and image.dtype == torch.float32
    assert out.shape == (15, 2) and out.canvas_size == (CROP_SIZE, CROP_SIZE)
    out = out.as_subclass(torch.Tensor).numpy()
    # Kaggle "left" is the subject's left, on the image's right, mirrored or not.
    assert out[K("left_eye_center"), 0] > out[K("right_eye_center"), 0]
    assert out[K("mouth_left_corner"), 0] > out[K("mouth_right_corner"), 0]
    centres = blob_centres(image[0].numpy())
    assert len(centres) == len(DRAWN)
    matched = set()
    for centre in centres:
        distance = np.linalg.norm(out - centre, axis=1)
        k = int(np.argmin(distance))
        assert distance[k] < 1.5, f"blob at {centre} is {distance[k]:.2f} px from the nearest keypoint"
        matched.add(KEYPOINT_NAMES[k])
    # Each blob sits under the point it was drawn for, or that point's mirror partner if mirrored.
    mirrored = {KEYPOINT_NAMES[FLIP_PERMUTATION[K(n)]] for n in DRAWN}
    assert matched in (set(DRAWN), mirrored)


def test_both_mirror_outcomes_happen():
    points = MEAN_SHAPE + CANVAS_MARGIN + SHIFT
    canvas = tv_tensors.Image(torch.from_numpy(blob_canvas(points))[None])
    torch.manual_seed(0)
    transform = train_transform(rotation=0.0, scale=0.0, shift_px=0.0)
    seen = set()
    for _ in range(20):
        _, out = transform(canvas, keypoints(points, CANVAS))
        seen.add(bool(abs(out[K("nose_tip"), 0].item() - (points[K("nose_tip"), 0] - CANVAS_MARGIN)) > 1))
    assert seen == {False, True}


def test_eval_transform_is_the_centre_crop():
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (CANVAS, CANVAS), dtype=np.uint8)
    points = MEAN_SHAPE + CANVAS_MARGIN
    image, out = eval_transform()(tv_tensors.Image(torch.from_numpy(canvas)[None]), keypoints(points, CANVAS))
    m = CANVAS_MARGIN
    np.testing.assert_allclose(image[0].numpy(), canvas[m:-m, m:-m] / 255.0, atol=1e-6)
    np.testing.assert_allclose(out.as_subclass(torch.Tensor).numpy(), MEAN_SHAPE, atol=1e-5)


def test_jitter_canvases_moves_points_with_the_image():
    points = MEAN_SHAPE + CANVAS_MARGIN + SHIFT
    canvas = torch.from_numpy(blob_canvas(points))
    images, moved = jitter_canvases(canvas[None], torch.from_numpy(points)[None], 0.08, 3.0, seed=5)
    assert images.shape == (1, CANVAS, CANVAS) and moved.shape == (1, 15, 2)
    centres = blob_centres(images[0].numpy().astype(np.float64))
    for centre in centres:
        assert np.linalg.norm(moved[0].numpy() - centre, axis=1).min() < 1.5


def test_masked_l1_ignores_nan_targets():
    pred = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], requires_grad=True)
    target = torch.tensor([[[2.0, 2.0], [float("nan"), float("nan")]], [[5.0, 9.0], [float("nan"), 4.0]]])
    loss = masked_l1(pred, target)
    assert loss.item() == pytest.approx((1 + 0 + 0 + 3 + 4) / 5)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[torch.isnan(target)] == 0).all()  # gaps give no gradient
    # Wild predictions at the gaps change nothing.
    other = pred.detach().clone()
    other[torch.isnan(target)] = 1e6
    assert masked_l1(other, target).item() == pytest.approx(loss.item())


def test_masked_l1_all_gaps_is_zero_not_nan():
    loss = masked_l1(torch.ones(2, 15, 2), torch.full((2, 15, 2), float("nan")))
    assert loss.item() == 0.0


def test_keypoint_metrics_skip_gaps():
    target = np.tile(MEAN_SHAPE, (3, 1, 1)).astype(np.float64)
    target[1, 3:] = np.nan  # an incomplete face: counts for RMSE, not for NME
    pred = target.copy()
    pred[np.isnan(pred)] = 0.0
    pred[..., 0] += 2.0  # 2 px off in x everywhere
    m = keypoint_metrics(pred, target)
    assert m["rmse"] == pytest.approx(np.sqrt(2.0))
    assert m["rmse_nose_tip"] == pytest.approx(np.sqrt(2.0))
    iod = np.linalg.norm(MEAN_SHAPE[3] - MEAN_SHAPE[5])
    assert m["nme"] == pytest.approx(2.0 / iod, rel=1e-5)


def test_pixel_noise_on_about_half_the_crops():
    """--pixel-noise: Gaussian noise of that sd (gray levels) on some crops, none on the others; off by default."""
    canvas = tv_tensors.Image(torch.full((1, CANVAS, CANVAS), 128, dtype=torch.uint8))
    points = keypoints(MEAN_SHAPE + CANVAS_MARGIN, CANVAS)
    torch.manual_seed(0)
    plain = train_transform(rotation=0.0, scale=0.0, shift_px=0.0)
    noisy = train_transform(rotation=0.0, scale=0.0, shift_px=0.0, pixel_noise=3.0)

    def sd(image: torch.Tensor) -> float:  # of a flat crop; 0 where no noise was added
        return 0.0 if image.max() == image.min() else float(image.std() * 255)

    assert all(sd(plain(canvas, points)[0]) == 0 for _ in range(10))
    sds = [sd(noisy(canvas, points)[0]) for _ in range(40)]
    assert 5 <= sds.count(0.0) <= 35
    assert all(s == 0 or 2.7 < s < 3.3 for s in sds)
