"""The cascade's parts on known inputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kaggle_framing import CROP_SIZE, FLIP_PERMUTATION, MEAN_SHAPE, NUM_KEYPOINTS
from train.model import CascadeCNN


def test_untrained_cascade_answers_the_mean_shape():
    """Both levels' last layers start at zero: training starts from the Kaggle mean shape, not noise.
    With its mirror image averaged in, the answer is still the mean shape: it is symmetric about the
    crop's mirror axis, x = 47.5 (pixel centres counted from 0)."""
    model = CascadeCNN().eval()
    x = torch.rand(3, 1, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    mean = torch.from_numpy(MEAN_SHAPE).expand(3, -1, -1)
    with torch.no_grad():
        torch.testing.assert_close(model.refine(x, model.coarse(x)), mean)
        torch.testing.assert_close(model(x), mean)


def test_mirrored_cascade_answers_a_mirrored_crop_as_its_mirror_image():
    """Averaging each crop's answer with its mirror image's makes the cascade mirror-equivariant: the
    answer on a mirrored crop is the mirror of the answer (x -> 95 - x), the two agree
    on how far apart they are, and the calibration offset is added last, once."""
    torch.manual_seed(0)
    model = CascadeCNN()
    for p in model.parameters():  # untrained heads are zero: give every weight something to say
        torch.nn.init.normal_(p, std=0.05)
    model.eval()
    x = torch.rand(4, 1, CROP_SIZE, CROP_SIZE)
    with torch.no_grad():
        points, presence, disagreement = model.answers(x)
        m_points, m_presence, m_disagreement = model.answers(x.flip(-1))
        back = m_points[:, list(FLIP_PERMUTATION)]
        back[..., 0] = CROP_SIZE - 1 - back[..., 0]
        torch.testing.assert_close(back, points, atol=1e-4, rtol=0)
        torch.testing.assert_close(m_presence, presence)
        torch.testing.assert_close(m_disagreement, disagreement, atol=1e-4, rtol=0)
        assert float(disagreement.min()) > 0.1  # a model with opinions does not agree with itself exactly
        model.offset += 0.5
        torch.testing.assert_close(model(x), points + 0.5, atol=1e-5, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_patches_sample_as_grid_sample_does(seed):
    """The separable patch sampler is bilinear sampling with border padding, as F.grid_sample (what it
    replaced) gives it, for points anywhere, including off the crop."""
    g = torch.Generator().manual_seed(seed)
    model = CascadeCNN()
    x = torch.rand(2, 1, CROP_SIZE, CROP_SIZE, generator=g)
    centres = torch.rand(2, NUM_KEYPOINTS, 2, generator=g) * 120 - 12
    r = model.patch_offsets
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    pixels = centres.view(2, NUM_KEYPOINTS, 1, 1, 2) + torch.stack([xx, yy], dim=-1)
    grid = ((2 * pixels + 1) / CROP_SIZE - 1).view(2, NUM_KEYPOINTS * model.patch, model.patch, 2)
    expected = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
    torch.testing.assert_close(model.patches(x, centres), expected.view(-1, 1, model.patch, model.patch), atol=1e-5, rtol=0)


def test_patches_are_centred_on_the_points():
    model = CascadeCNN().eval()
    image = torch.zeros(1, 1, CROP_SIZE, CROP_SIZE)
    image[0, 0, 30, 60] = 1.0  # one bright pixel at x=60, y=30
    centres = torch.full((1, NUM_KEYPOINTS, 2), 10.0)
    centres[0, 4] = torch.tensor([60.0, 30.0])
    patches = model.patches(image, centres).view(NUM_KEYPOINTS, model.patch, model.patch)
    m = model.patch // 2
    # The even-sided patch is symmetric about its point: the four middle samples sit half a pixel
    # from it and share the bright pixel equally (bilinear), and nothing else sees it.
    torch.testing.assert_close(patches[4, m - 1 : m + 1, m - 1 : m + 1], torch.full((2, 2), 0.25))
    assert float(patches[4].sum()) == 1.0
    assert patches[0].max() == 0.0  # the other points' patches do not see it


def test_patches_at_points_that_are_not_numbers():
    """A diverged model's NaN or infinite level-1 points still give patches (valid indices for the
    gather), so its NaN reaches the loss and the diverged-run check instead of an indexing error."""
    model = CascadeCNN().eval()
    x = torch.rand(1, 1, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    centres = torch.full((1, NUM_KEYPOINTS, 2), 40.0)
    centres[0, 0, 0], centres[0, 1, 1], centres[0, 2, 0] = float("nan"), float("inf"), -float("inf")
    patches = model.patches(x, centres)
    assert patches.shape == (NUM_KEYPOINTS, 1, model.patch, model.patch) and torch.isfinite(patches).all()
    # Infinities sit on the border, as a far-off point does (border padding).
    torch.testing.assert_close(patches[1], model.patches(x, torch.where(centres.isinf(), 1e6, centres))[1])
