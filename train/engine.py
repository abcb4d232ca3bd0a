"""The training loop, evaluation and checkpoints."""
from __future__ import annotations

import argparse
import csv
import math
import os
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from kaggle_framing.weights_contract import WeightsError, answers_on_mirror, load_torchscript
from train import distributed
from train.augment import eval_transform, train_transform
from train.data import DataError, Faces, KeypointDataset
from train.metrics import keypoint_metrics, masked_l1, presence_errors
from train.model import ARCHITECTURES, architecture_of, upgraded_state

CHECKPOINT = "checkpoint.pth"
METRICS = "metrics.csv"


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, unusable checkpoint); the message says why."""


# What `fit` trains (train.model.ARCHITECTURES), and its shape from scratch unless told otherwise
# (--width1, --width2, --mirror/--no-mirror).
MODEL_CLASS = "CascadeCNN"
FRESH_ARCHITECTURE = {"width1": 32, "width2": 16, "mirror": True}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: CUDA is not available here (use --device cpu or auto)")
    return torch.device(name)


def loader(
    faces: Faces, train: bool, batch_size: int, workers: int, seed: int = 0, pixel_noise: float = 0.0
) -> DataLoader:
    """Batches of a split; under torchrun, this process's share of them (see train.distributed)."""
    dataset = KeypointDataset(faces, train_transform(pixel_noise=pixel_noise) if train else eval_transform())
    world = distributed.world_size()
    if train and world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=distributed.rank(), shuffle=True, seed=seed,
                                     drop_last=True)
        return DataLoader(dataset, batch_size=batch_size // world, sampler=sampler, drop_last=True, num_workers=workers)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(faces) > batch_size,
        num_workers=workers, generator=torch.Generator().manual_seed(seed),
    )


class TrainStep(torch.nn.Module):
    """One training forward pass as a module's `forward`, which is what DistributedDataParallel wraps:
    level 1 (points and presence logit), then level 2 from level-1 points jittered by `noise` px."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, noise: float):
        coarse, logit = self.model.coarse_with_logit(images)
        # Level 2 learns to correct level-1 errors as large as they are on unseen faces, not
        # only the small ones left on the training set: jitter its centres.
        centres = coarse.detach() + noise * torch.randn_like(coarse)
        return coarse, logit, self.model.refine(images, centres)


@torch.inference_mode()
def predict(model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256,
            level1_only: bool = False) -> np.ndarray:
    """(N, 1, 96, 96) float images -> (N, 15, 2) predictions, for an eager cascade or TorchScript."""
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device)
        out.append((model.coarse(x) if level1_only else model(x)).float().cpu())
    return torch.cat(out).numpy()


@torch.inference_mode()
def predict_presence(model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """(N,) face-presence probabilities of a model with `with_presence`."""
    return torch.cat([model.with_presence(images[i : i + batch_size].to(device))[1].float().cpu()
                      for i in range(0, len(images), batch_size)]).numpy()


def evaluate_faces(model: torch.nn.Module, images: torch.Tensor, targets: np.ndarray, device: torch.device,
                   negatives: torch.Tensor | None = None) -> dict:
    """Metrics of the full cascade, plus level 1 alone (`l1_` keys) where the model exposes it, and
    the presence score's error rates on these faces and on `negatives` (crops with no face)."""
    model.eval()
    metrics = keypoint_metrics(predict(model, images, device), targets)
    if hasattr(model, "coarse"):
        coarse = keypoint_metrics(predict(model, images, device, level1_only=True), targets)
        metrics.update({f"l1_{k}": v for k, v in coarse.items() if k in ("rmse", "nme")})
    if hasattr(model, "with_presence"):
        scores = [predict_presence(model, images, device)]
        if negatives is not None and len(negatives):
            scores.append(predict_presence(model, negatives, device))
        is_face = np.arange(sum(map(len, scores))) < len(images)
        metrics.update(presence_errors(np.concatenate(scores), is_face))
    return metrics


def stack_eval(faces: Faces) -> tuple[torch.Tensor, np.ndarray]:
    """All faces of a split as one (N, 1, 96, 96) tensor and (N, 15, 2) targets (no augmentation)."""
    items = [KeypointDataset(faces, eval_transform())[i] for i in range(len(faces))]
    return torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items]).numpy()


def save_checkpoint(path: Path, **state) -> None:
    """Write atomically: a crash or full disk mid-write never leaves a half checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict:
    try:
        with warnings.catch_warnings():
            # Given an exported cascade by mistake, torch.load warns and loads it; the check below says so.
            warnings.filterwarnings("ignore", "'torch.load' received a zip file that looks like a TorchScript")
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise TrainingError(f"{path}: checkpoint not found") from None
    except Exception as e:  # torch raises many types for damaged files
        raise TrainingError(f"{path}: not a readable checkpoint ({type(e).__name__}); delete it or point --resume elsewhere") from None
    # torch.load also opens other files (an exported TorchScript cascade, any pickle): say so here
    # rather than fail later with a KeyError or TypeError.
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise TrainingError(f"{path}: not a training checkpoint (written by `python -m train fit`)")
    return checkpoint


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Module:
    model = ARCHITECTURES[checkpoint.get("model_class", MODEL_CLASS)](**checkpoint.get("model_args", {}))
    model.load_state_dict(upgraded_state(checkpoint["model"], model))
    return model.eval()


def warmed_up_ema(decay: float):
    """AveragedModel's update for a moving average warmed up as timm's EMA: at update t its decay is
    min(decay, (1 + t) / (10 + t)), so the average follows about the last tenth of the steps so far
    until `decay` takes over (0.998: after ~4500 steps). A short run or fine-tune then ends near its
    own last weights instead of near the weights it started from."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        t = float(updates)
        d = min(decay, (1 + t) / (10 + t))
        for a, c in zip(averaged, current, strict=True):
            if a.is_floating_point():
                a.lerp_(c, 1 - d)
            else:  # counters (batch norm's num_batches_tracked): the current one
                a.copy_(c)

    return update


def fit(args: argparse.Namespace, train_faces: Faces, val_faces: Faces, val_negatives: Faces | None = None) -> Path:
    """Train the cascade; one checkpoint and one metrics row per epoch in args.output_dir.

    Training faces whose keypoints are all NaN are crops with no face: they teach the presence
    score only. `val_negatives` such crops held out, to score it."""
    if len(train_faces) == 0:
        raise DataError(
            f"the training split is empty: --val-fraction {args.val_fraction} holds out every identity (lower it)"
        )
    device = distributed.start(pick_device(args.device))
    main = distributed.is_main()
    out = prepare_output_dir(args.output_dir)
    torch.manual_seed(args.seed)  # the same initial weights in every process
    start = load_init(args.init) if args.init else None
    if start is not None:
        model_args = chosen_architecture(args, start[1], f"--init {args.init}")
    elif args.resume:  # the run's own cascade (a checkpoint of another one fails to load below)
        model_args = chosen_architecture(args, load_checkpoint(args.resume).get("model_args"), f"--resume {args.resume}")
    else:
        model_args = chosen_architecture(args, None, "")
    model = ARCHITECTURES[MODEL_CLASS](**model_args).to(device)
    if start is not None:
        init_from(model, args.init, start[0])
    step = TrainStep(model)
    if distributed.world_size() > 1:
        step = torch.nn.parallel.DistributedDataParallel(step)
    # An exponential moving average of the weights is what gets evaluated and exported: it is
    # steadier than the last step's weights and costs nothing at inference.
    ema = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=warmed_up_ema(args.ema_decay), use_buffers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = max(1, len(train_faces) // args.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.05
    )
    start_epoch = 0
    if args.resume:
        checkpoint = load_checkpoint(args.resume)
        schedule = resumed_schedule(args, checkpoint, scheduler)
        try:
            model.load_state_dict(upgraded_state(checkpoint["train_model"], model))
            ema.load_state_dict(upgraded_state(checkpoint["ema"], ema))
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(schedule)
            start_epoch = checkpoint["epoch"] + 1
            torch.set_rng_state(checkpoint["rng"]["torch"])
            np.random.set_state(checkpoint["rng"]["numpy"])
            random.setstate(checkpoint["rng"]["python"])
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
            # A checkpoint with missing parts, or of another model (other widths, a damaged tensor).
            reason = " ".join(str(e).split())[:120]
            raise TrainingError(
                f"{args.resume}: damaged or not from this model ({type(e).__name__}: {reason}); "
                "delete it or point --resume elsewhere"
            ) from None
        if start_epoch >= args.epochs:
            raise TrainingError(
                f"{args.resume}: has already run {start_epoch} epochs; give --epochs more than that to extend it"
            )
    val_images, val_targets = stack_eval(val_faces) if len(val_faces) else (None, None)
    val_negative_images = stack_eval(val_negatives)[0] if val_negatives is not None and len(val_negatives) else None

    for epoch in range(start_epoch, args.epochs):
        # Everything random in an epoch derives from (seed, epoch): resuming replays it exactly.
        torch.manual_seed(args.seed * 100_003 + epoch)
        model.train()
        total, count, t0 = 0.0, 0, time.time()
        batches = loader(
            train_faces, True, args.batch_size, args.workers, seed=args.seed * 100_003 + epoch,
            pixel_noise=args.pixel_noise,
        )
        if distributed.world_size() > 1:
            batches.sampler.set_epoch(epoch)
        for images, targets, weights in tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False,
                                             disable=None if main else True):
            images, targets, weights = images.to(device), targets.to(device), weights.to(device).float()
            coarse, logit, fine = step(images, args.centre_noise)
            is_face = (~torch.isnan(targets)).flatten(1).any(dim=1).float()
            presence = F.binary_cross_entropy_with_logits(logit, is_face)
            loss = masked_l1(coarse, targets, weights) + masked_l1(fine, targets, weights) + args.presence_weight * presence
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"epoch {epoch + 1}: loss is {loss.item()}; stopped without saving (lower --lr or check the data)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            ema.update_parameters(model)
            total += loss.item() * len(images)
            count += len(images)
        row = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "lr": scheduler.get_last_lr()[0],
               "seconds": round(time.time() - t0, 1)}
        if val_images is not None:
            metrics = evaluate_faces(ema.module, val_images, val_targets, device, val_negative_images)
            row.update({k: metrics[k] for k in ("rmse", "nme", "l1_rmse", "l1_nme")})
            row.update({k: metrics[k] for k in ("presence_missed", "presence_false") if math.isfinite(metrics.get(k, math.nan))})
        # The loss is checked before each step, not after the last one: a step that blew the weights
        # up shows here. Such an epoch is neither recorded nor saved (the last good checkpoint stays).
        diverged = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        if diverged or not all_finite(model) or not all_finite(ema.module):
            raise TrainingError(
                f"epoch {epoch + 1}: the model diverged ({', '.join(diverged) or 'weights'} not finite); "
                "stopped without saving (lower --lr or check the data)"
            )
        if not main:
            continue
        append_metrics(out / METRICS, row, restart=epoch == 0)
        save_checkpoint(
            out / CHECKPOINT, model_class=MODEL_CLASS, model_args=model_args, model=ema.module.state_dict(),
            train_model=model.state_dict(), ema=ema.state_dict(), optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(), epoch=epoch, args=vars(args),
            rng={"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        )
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        plot_metrics(out / METRICS, out / "curves.png")
    return out / CHECKPOINT


def resumed_schedule(args: argparse.Namespace, checkpoint: dict,
                     scheduler: torch.optim.lr_scheduler.OneCycleLR) -> dict | None:
    """The scheduler state to resume with. With the checkpoint's --epochs, its own: the run goes on
    exactly. With other --epochs (more, to extend a finished run), the one-cycle curve is laid over
    the new length and the run goes on from its place on it: finished epoch 120 of a run extended to
    150 continues at the learning rate of epoch 120 of a 150-epoch run. Steps per epoch (--batch-size
    and the data) must be the checkpoint's."""
    saved_schedule = checkpoint.get("scheduler")
    if not isinstance(saved_schedule, dict) or saved_schedule.get("total_steps") == scheduler.total_steps:
        return saved_schedule  # a missing one fails to load below, as a damaged checkpoint
    state, saved = dict(checkpoint["scheduler"]), checkpoint.get("args", {})
    saved_steps = state.get("total_steps")
    per_epoch = scheduler.total_steps // args.epochs
    if not saved_steps or not saved.get("epochs") or saved_steps != saved["epochs"] * per_epoch:
        raise TrainingError(
            f"{args.resume}: made with {saved_steps} steps over --epochs {saved.get('epochs')} (--batch-size "
            f"{saved.get('batch_size')}), this run has {per_epoch} steps per epoch; resume with the same "
            "--batch-size and data"
        )
    fresh = scheduler.state_dict()
    state.update(total_steps=fresh["total_steps"], _schedule_phases=fresh["_schedule_phases"])
    return state


# Weights of cascades exported before level 1 had its presence head: its one head was Sequential.
_RENAMED = {"level1.head.2.": "level1.hidden.2.", "level1.head.4.": "level1.points."}


def load_init(path: str) -> tuple[dict, dict]:
    """The weights of a cascade file or checkpoint to start a fine-tune from, and the architecture
    they hold (their shapes, and whether they answer on mirror images too)."""
    try:
        scripted = load_torchscript(path)
        state, mirror = dict(scripted.state_dict()), answers_on_mirror(scripted)
    except WeightsError:  # not a cascade file: a training checkpoint (or a clear error from its loader)
        checkpoint = load_checkpoint(path)
        state, mirror = checkpoint["model"], checkpoint.get("model_args", {}).get("mirror", True)
    for old, new in _RENAMED.items():
        state = {k.replace(old, new): v for k, v in state.items()}
    try:
        return state, architecture_of(state, mirror)
    except KeyError as e:
        raise TrainingError(f"--init {path}: not weights of this model (no {e})") from None


def chosen_architecture(args: argparse.Namespace, held: dict | None, where: str) -> dict:
    """The cascade to train: the one `held` by the weights started from (`where`: --init or --resume),
    else the defaults, with what the command line gives; sizes that differ from the weights' are an
    error naming both."""
    given = {k: v for k, v in (("width1", args.width1), ("width2", args.width2), ("mirror", args.mirror))
             if v is not None}
    held = {**FRESH_ARCHITECTURE, **(held or {})}
    clash = [k for k in ("width1", "width2") if k in given and given[k] != held[k]]
    if clash and where:
        raise TrainingError(f"{where}: weights of shape {_shape(held)}, not the {_shape({**held, **given})} "
                            f"asked for (leave {' and '.join('--' + k for k in clash)} out to take the weights' own)")
    return {**held, **given}


def _shape(architecture: dict) -> str:
    return f"width1 {architecture['width1']}, width2 {architecture['width2']}"


def init_from(model: torch.nn.Module, path: str, state: dict) -> None:
    """Start from these weights of a cascade file or checkpoint (a fine-tune). Parts they lack (the
    presence head of an older file) keep their fresh initialisation, and are named."""
    state = upgraded_state(state, model)
    # A calibration offset (`train calibrate`) was measured for those weights' answers; a fine-tune
    # changes them, so it starts without one (calibrate again after).
    state["offset"] = torch.zeros_like(model.offset)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise TrainingError(f"--init {path}: not weights of this model ({' '.join(str(e).split())[:120]})") from None
    if unexpected:
        raise TrainingError(f"--init {path}: not weights of this model (unexpected {', '.join(unexpected[:3])})")
    print(f"started from {path}" + (f"; fresh: {', '.join(missing)}" if missing else ""), flush=True)


def all_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


def prepare_output_dir(path: str | Path) -> Path:
    """Create --output-dir (checked before any data loads or an epoch runs), or say why not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TrainingError(f"--output-dir {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TrainingError(f"--output-dir {path}: cannot create the folder ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise TrainingError(f"--output-dir {path}: cannot write there (permission denied)")
    return path


def append_metrics(path: Path, row: dict, restart: bool) -> None:
    new = restart or not path.exists()
    with path.open("w" if new else "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def plot_metrics(metrics_csv: Path, png: Path) -> None:
    """Loss and validation RMSE per epoch, as a PNG beside the metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.read_csv(metrics_csv)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(table["epoch"], table["train_loss"])
    a.set(xlabel="epoch", ylabel="train loss (L1, px, both levels)", yscale="log")
    for column, label in (("l1_rmse", "level 1"), ("rmse", "cascade")):
        if column in table and table[column].notna().any():
            b.plot(table["epoch"], table[column], label=label)
    b.set(xlabel="epoch", ylabel="validation RMSE (px at 96x96)")
    b.grid(alpha=0.3)
    if b.lines:
        b.legend()
        b.set_ylim(0, min(8.0, 1.2 * math.ceil(np.nanmax(table[["rmse"]].to_numpy()))))
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
