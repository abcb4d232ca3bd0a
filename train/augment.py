"""Augmentation with torchvision.transforms.v2 on (image, KeyPoints) pairs.

Inputs are canvases (the Kaggle crop plus a border, see `train.data`); every pipeline ends with the
centre 96x96 crop as float in [0, 1].
"""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from kaggle_framing import CROP_SIZE, FLIP_PERMUTATION


class MirrorWithSwap(torch.nn.Module):
    """Horizontal flip that also swaps the left/right keypoints, so labels keep their meaning."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p
        self.permutation = list(FLIP_PERMUTATION)

    def forward(self, image: torch.Tensor, points: tv_tensors.KeyPoints):
        if torch.rand(()) >= self.p:
            return image, points
        image, points = v2.functional.horizontal_flip(image), v2.functional.horizontal_flip(points)  # x -> W - 1 - x
        return image, tv_tensors.wrap(points[self.permutation], like=points)


def train_transform(
    rotation: float = 10.0, scale: float = 0.16, shift_px: float = 6.0, pixel_noise: float = 0.0
) -> v2.Compose:
    """Mirror, detector-like jitter (rotation, scale, shift) and lighting/focus changes; with
    `pixel_noise` > 0, Gaussian noise of that sd (gray levels) on half the crops, as camera noise:
    it teaches a one-pass model to hold still on a still face."""
    noise = [v2.RandomApply([v2.GaussianNoise(sigma=pixel_noise / 255)], p=0.5)] if pixel_noise > 0 else []
    return v2.Compose(
        [
            MirrorWithSwap(),
            v2.RandomAffine(
                degrees=rotation, translate=(shift_px / CROP_SIZE, shift_px / CROP_SIZE), scale=(1 - scale, 1 + scale),
                interpolation=v2.InterpolationMode.BILINEAR,  # as the tracker's crops; the default is nearest
            ),
            v2.CenterCrop(CROP_SIZE),
            v2.RandomApply([v2.ColorJitter(brightness=0.4, contrast=0.5)], p=0.8),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.5))], p=0.3),
            v2.ToDtype(torch.float32, scale=True),
            *noise,
        ]
    )


def eval_transform() -> v2.Compose:
    return v2.Compose([v2.CenterCrop(CROP_SIZE), v2.ToDtype(torch.float32, scale=True)])


def jitter_canvases(canvases: torch.Tensor, keypoints: torch.Tensor, scale_sd: float, shift_sd: float, seed: int):
    """Detector-like framing error, fixed by `seed`: each face rescaled by N(1, scale_sd) and
    shifted by N(0, shift_sd) crop pixels. (N, H, W) uint8 canvases, (N, 15, 2) points."""
    g = torch.Generator().manual_seed(seed)
    out_images, out_points = [], []
    size = tuple(canvases.shape[-2:])
    for image, points in zip(canvases, keypoints):
        s = float(1 + scale_sd * torch.randn((), generator=g))
        dx, dy = (shift_sd * torch.randn(2, generator=g)).tolist()
        kwargs = dict(angle=0.0, translate=[dx, dy], scale=s, shear=[0.0, 0.0])
        out_images.append(v2.functional.affine(image[None], **kwargs, interpolation=v2.InterpolationMode.BILINEAR)[0])
        out_points.append(v2.functional.affine(tv_tensors.KeyPoints(points, canvas_size=size), **kwargs))
    return torch.stack(out_images), torch.stack(out_points)
