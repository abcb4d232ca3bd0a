"""The cascade's parts on known inputs."""
from __future__ import annotations

import torch

from kaggle_framing import CROP_SIZE, MEAN_SHAPE, NUM_KEYPOINTS
from train.model import CascadeCNN


def test_untrained_cascade_answers_the_mean_shape():
    """Both levels' last layers start at zero: training starts from the Kaggle mean shape, not noise."""
    model = CascadeCNN().eval()
    x = torch.rand(3, 1, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), torch.from_numpy(MEAN_SHAPE).expand(3, -1, -1))


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
