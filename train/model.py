"""The cascaded CNN: level 1 regresses 15 points from the whole 96x96 crop, level 2 refines each
point from a small patch cut around its level-1 estimate. With `mirror` (the default; `--no-mirror`
for one pass a face, as the shipped weights) it also answers on the mirrored crop at inference and
averages the two (held-out ytf68: RMSE 1.511 -> 1.492 px, 1.549 -> 1.522 with jittered framing, on
the weights of 2026-12-01), which also tells how far apart they are: a measure of how sure it is.

Both levels live in one module so that one TorchScript file holds the whole cascade. Everything
here is plain torch (no torchvision ops), as the weights contract requires.
"""
from __future__ import annotations

import torch
from torch import nn

from kaggle_framing import CROP_MIRROR_AXIS, CROP_SIZE, FLIP_PERMUTATION, MEAN_SHAPE, NUM_KEYPOINTS
from kaggle_framing.weights_contract import answers_on_mirror


def conv_bn(cin: int, cout: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU (the norm folds into the conv at export)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class Level1(nn.Module):
    """Whole-face CNN on the crop at half resolution (finding the face's points needs no more):
    (N, 1, 96, 96) -> (N, 15, 2) offsets from the mean shape, in units of 48 px, and (N,) the logit
    that the crop holds a face at all (read from the same 128 features: one more dot product)."""

    def __init__(self, width: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.AvgPool2d(2),  # 48x48
            conv_bn(1, w // 2, stride=2),  # 24x24
            conv_bn(w // 2, w, stride=2),  # 12x12
            conv_bn(w, w),
            conv_bn(w, 2 * w, stride=2),  # 6x6
            conv_bn(2 * w, 2 * w),
        )
        self.hidden = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * w * 36, 128), nn.ReLU(inplace=True))
        self.points = nn.Linear(128, 2 * NUM_KEYPOINTS)
        self.presence = nn.Linear(128, 1)
        nn.init.zeros_(self.points.weight)
        nn.init.zeros_(self.points.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.features(x))
        return self.points(h).view(x.shape[0], -1, 2), self.presence(h)[:, 0]


class Level2(nn.Module):
    """Patch refiner: one small CNN shared by the 15 full-resolution patches, one linear head per
    keypoint. (N * 15, 1, P, P) patches -> (N, 15, 2) corrections in pixels.

    The first layer is strided: a stride-1 layer at P x P first was as accurate and cost ~17% of the
    whole cascade's time (30-epoch lockstep runs on the shipped level 1: 1.791 vs 1.797 px)."""

    def __init__(self, patch: int = 20, width: int = 16, features: int = 64) -> None:
        super().__init__()
        w = width
        self.trunk = nn.Sequential(
            conv_bn(1, w, stride=2),  # P/2
            conv_bn(w, 2 * w, stride=2),  # P/4
            nn.Flatten(),
            nn.Linear(2 * w * ((patch + 3) // 4) ** 2, features),
            nn.ReLU(inplace=True),
        )
        # Per-keypoint heads as one (15, F, 2) weight: a left eye corner and a mouth corner need
        # different readouts of the same features.
        self.head_weight = nn.Parameter(torch.zeros(NUM_KEYPOINTS, features, 2))
        self.head_bias = nn.Parameter(torch.zeros(NUM_KEYPOINTS, 2))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        k, f = self.head_weight.shape[0], self.head_weight.shape[1]
        features = self.trunk(patches).view(-1, k, f)  # (N, 15, F)
        return torch.einsum("nkf,kfo->nko", features, self.head_weight) + self.head_bias


class CascadeCNN(nn.Module):
    """(N, 1, 96, 96) crops in [0, 1] -> (N, 15, 2) keypoints in crop pixels, Kaggle order.

    `with_presence(x)` also returns (N,) the probability that each crop holds a face (trained on
    face crops against background, badly framed crops and detector false positives), and
    `answers(x)` also (N,) how far apart (crop px, mean over points) the answers on the crop and on
    its mirror image are. With `mirror` (the default) every answer is the mean of those two; `offset`
    (15, 2) is added last (`python -m train calibrate` sets it). Training runs the levels directly
    (`coarse_with_logit`, `refine`), on one image at a time."""

    __constants__ = ["mirror"]

    def __init__(self, patch: int = 20, width1: int = 32, width2: int = 16, mirror: bool = True) -> None:
        super().__init__()
        self.patch = patch
        self.num_keypoints = NUM_KEYPOINTS
        self.crop_size = CROP_SIZE
        self.mirror = mirror
        self.mirror_axis = CROP_MIRROR_AXIS  # (an attribute: TorchScript reads no module globals)
        self.level1 = Level1(width1)
        self.level2 = Level2(patch, width2)
        self.register_buffer("mean_shape", torch.from_numpy(MEAN_SHAPE.copy()))
        # Patch sampling offsets in pixels, (P,), centred on the keypoint (the same along x and y).
        self.register_buffer("patch_offsets", torch.arange(patch, dtype=torch.float32) - (patch - 1) / 2)
        self.register_buffer("window_index", torch.arange(patch + 2, dtype=torch.float32))
        self.register_buffer("flip_permutation", torch.tensor(FLIP_PERMUTATION))
        self.register_buffer("offset", torch.zeros(NUM_KEYPOINTS, 2))

    @classmethod
    def from_torchscript(cls, scripted: torch.jit.ScriptModule) -> "CascadeCNN":
        """The eager cascade holding a TorchScript cascade's weights (the ONNX exporter needs one);
        its sizes are read from the weights' shapes. Files from before the mirror load as they ran:
        without it."""
        state = dict(scripted.state_dict())
        model = cls(**architecture_of(state, answers_on_mirror(scripted)))
        model.load_state_dict(upgraded_state(state, model))
        return model.eval()

    def architecture(self) -> dict:
        """What builds this cascade again, `CascadeCNN(**architecture)`: its sizes and whether it mirrors."""
        return architecture_of(self.state_dict(), self.mirror)

    def coarse_with_logit(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Level 1 alone, on these crops only: (N, 15, 2) crop pixels and (N,) face-presence logits."""
        offsets, logit = self.level1(x - 0.5)
        return self.mean_shape + offsets * (self.crop_size / 2), logit

    @torch.jit.export
    def coarse(self, x: torch.Tensor) -> torch.Tensor:
        """Level 1 alone: (N, 15, 2) crop pixels."""
        return self.coarse_with_logit(x)[0]

    def patches(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Bilinear (N * 15, 1, P, P) patches of `x` centred on `centres` (N, 15, 2) pixels.

        What F.grid_sample(padding_mode="border", align_corners=False) gives, computed as onnxruntime
        runs it fast (grid_sample was a third of the cascade's time there): a patch is a shifted
        window, so each keypoint's (P + 2)^2 window of pixels is gathered, and sampled by rows and
        columns with two small matrix products, Wy @ window @ Wx^T, where W holds the bilinear
        weights of each sample's (clamped: border padding) coordinate on the window's pixels."""
        n, k, p, size = x.shape[0], self.num_keypoints, self.patch, self.crop_size
        width = p + 2
        # A diverged model's NaN: its points stay NaN, its indices valid (infinities are clamped below).
        # Not nan_to_num: that exports as nine ONNX nodes, this as two (each costs a batch of one ~2 us).
        centres = torch.where(centres == centres, centres, 0.0)
        start = (centres.floor() - (width // 2 - 1)).clamp(0, size - width)  # (N, 15, 2): window corner
        at = (centres[..., None] + self.patch_offsets).clamp(0, size - 1) - start[..., None]  # (N, 15, 2, P)
        weights = (1 - (at[..., None] - self.window_index).abs()).clamp(min=0)  # (N, 15, 2, P, W)
        index = (start[..., 1] * size + start[..., 0])[..., None, None] + (self.window_index[:, None] * size + self.window_index)
        windows = x.reshape(n, size * size).gather(1, index.long().reshape(n, -1)).reshape(n, k, width, width)
        rows = torch.matmul(weights[:, :, 1], windows)  # (N, 15, P, W)
        return torch.matmul(rows, weights[:, :, 0].transpose(-1, -2)).reshape(n * k, 1, p, p)

    def refine(self, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """Level 2: centres plus the patch CNN's corrections."""
        return centres + self.level2(self.patches(x - 0.5, centres))

    def _cascade(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centres, logit = self.coarse_with_logit(x)
        return self.refine(x, centres), torch.sigmoid(logit)

    @torch.jit.export
    def answers(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 15, 2) keypoints, (N,) face-presence probabilities and (N,) how far apart the answers
        on each crop and its mirror image are (zeros without `mirror`)."""
        n = x.shape[0]
        if not self.mirror:
            points, presence = self._cascade(x)
            return points + self.offset, presence, torch.zeros_like(presence)
        points, presence = self._cascade(torch.cat([x, x.flip(-1)]))
        # The mirror's answers, mapped back: left/right names swap, x -> mirror_axis - x.
        back = points[n:].index_select(1, self.flip_permutation)
        back = torch.stack([self.mirror_axis - back[..., 0], back[..., 1]], dim=-1)
        plain = points[:n]
        disagreement = (plain - back).pow(2).sum(-1).sqrt().mean(-1)
        return (plain + back) / 2 + self.offset, (presence[:n] + presence[n:]) / 2, disagreement

    @torch.jit.export
    def with_presence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 15, 2) keypoints and (N,) face-presence probabilities in one pass."""
        points, presence, _ = self.answers(x)
        return points, presence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.answers(x)[0]


# The architectures `fit` trains, by the name a checkpoint keeps (`model_class`). Each is built from
# keyword arguments (`model_args`, which `architecture()` gives back), trains through
# `coarse_with_logit` and `refine`, and exports to the weights contract (kaggle_framing/weights_contract.py).
ARCHITECTURES: dict[str, type[nn.Module]] = {"CascadeCNN": CascadeCNN}


def architecture_of(state: dict, mirror: bool) -> dict:
    """A cascade's constructor arguments, read from the shapes of its weights."""
    return {"patch": state["patch_offsets"].shape[0], "width1": state["level1.features.2.0.weight"].shape[0],
            "width2": state["level2.trunk.0.0.weight"].shape[0], "mirror": mirror}


def upgraded_state(state: dict, module: nn.Module) -> dict:
    """A state dict of an earlier cascade (or of an average of one), as `module` reads it: buffers
    added since (the output offset, window indices, flip permutation) take the module's own values,
    and (P, P, 2) patch offsets become (P,)."""
    state = dict(state)
    for name, value in module.state_dict().items():
        if name.endswith(("offset", "window_index", "flip_permutation")):
            state.setdefault(name, value)
    for name, value in state.items():
        if name.endswith("patch_offsets") and value.dim() == 3:
            state[name] = value[0, :, 0]
    return state
