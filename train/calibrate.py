"""`python -m train calibrate CHECKPOINT --pts DIR [--ytf68 DIR] --output CHECKPOINT`: fold the
model's median signed error per keypoint coordinate on TRAINING faces into its output offset.

Why: a model's answers carry small systematic offsets (the mean of what its sources taught, which
differ a little in convention; the average over face sizes). Thirty numbers measured on faces it
trained on (never the held-out ones), in the convention we want (human labels, 300-W `--pts`
folders; ytf68's training people with their offsets taken out, `train.conventions`) remove them at no
cost at run time. They are measured on what the cascade answers (with its mirror image, where it
mirrors) and added after the mirror average.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from kaggle_framing import KEYPOINT_NAMES
from train.conventions import load_offsets
from train.data import Faces, split_by_group, ytf68_faces
from train.engine import TrainingError, load_checkpoint, model_from_checkpoint, predict, save_checkpoint, stack_eval
from train.folders import cached_faces
from train.metrics import keypoint_metrics


def calibrate(args: argparse.Namespace) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    if args.no_mirror:  # the offset is measured on, and stored for, answers on the crop alone
        checkpoint["model_args"] = {**checkpoint.get("model_args", {}), "mirror": False}
    model = model_from_checkpoint(checkpoint)
    measured, held_out = [cached_faces("pts", root, args.cache) for root in args.pts], None
    if args.ytf68:
        offsets = load_offsets(args.ytf68_offsets) if args.ytf68_offsets != "none" else None
        faces = ytf68_faces(args.ytf68, offsets)
        train_rows, val_rows = split_by_group(faces.groups, args.val_fraction, args.split_seed)
        measured.append(faces.subset(train_rows))
        held_out = faces.subset(val_rows)
    if not measured:
        raise TrainingError("calibrate needs --pts DIR and/or --ytf68 DIR")
    training = Faces.concat(measured)
    predicted, targets = _predictions(model, training)
    bias = np.nanmedian(predicted - targets, axis=0)  # (15, 2): the median, as the L1 loss would place it
    before = keypoint_metrics(*_predictions(model, held_out)) if held_out is not None else None
    with torch.no_grad():
        model.offset -= torch.from_numpy(bias.astype(np.float32))
    print(f"offsets measured on {len(training)} training faces: x {bias[:, 0].mean():+.3f} px on average "
          f"(from {bias[:, 0].min():+.2f} to {bias[:, 0].max():+.2f}), y {bias[:, 1].mean():+.3f}")
    if held_out is not None:
        after = keypoint_metrics(*_predictions(model, held_out))
        print(f"held-out ytf68 RMSE {before['rmse']:.3f} -> {after['rmse']:.3f} px, NME {before['nme']:.4f} -> {after['nme']:.4f}")
    print("per keypoint x, y offset: " + ", ".join(f"{n} {x:+.2f},{y:+.2f}" for n, (x, y) in zip(KEYPOINT_NAMES, bias)))
    checkpoint = {**checkpoint, "model": model.state_dict(), "calibration": bias.tolist()}
    save_checkpoint(Path(args.output), **checkpoint)
    print(f"wrote {args.output}")
    return 0


def _predictions(model, faces):
    images, targets = stack_eval(faces)
    return predict(model, images, torch.device("cpu")), targets
