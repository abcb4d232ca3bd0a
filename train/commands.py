"""The `python -m train` commands; each takes the parsed arguments and returns an exit status (COMMANDS)."""
from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kaggle_framing import COLUMNS, CROP_SIZE, KEYPOINT_NAMES, NUM_KEYPOINTS
from kaggle_framing.weights_contract import WeightsError, load_torchscript, twin_path
from train.augment import jitter_canvases
from train import distributed
from train.folders import cached_faces, read_exclusions, without
from train.data import DataError, Faces, kaggle_faces, read_kaggle_csv, split_by_group, ytf68_faces
from train.calibrate import calibrate
from train.calibrate_box import calibrate_box
from train.pseudolabel import pseudolabel, teacher_map
from train.teacher import TeacherError
from train.conventions import load_offsets
from train.export import export_cascade, export_twin
from train.engine import (
    TrainingError, evaluate_faces, fit as fit_loop, load_checkpoint, model_from_checkpoint, pick_device, predict,
    prepare_output_dir, stack_eval,
)
from train.model import CascadeCNN
from train.negatives import negatives_from_folders
from tracker.haar_detector import HaarDetector


def load_split(args: argparse.Namespace) -> tuple[Faces, Faces]:
    """Train and validation faces of every source given; each source is split by identity."""
    offsets = load_offsets(args.ytf68_offsets) if args.ytf68 and args.ytf68_offsets != "none" else None
    sources = [(args.ytf68, partial(ytf68_faces, offsets=offsets)), (args.kaggle, kaggle_faces)]
    if not any(path for path, _ in sources):
        raise DataError("no data: give --ytf68 DIR and/or --kaggle training.csv")
    if not 0 <= args.val_fraction <= 1:
        raise DataError(f"--val-fraction {args.val_fraction}: must be between 0 and 1")
    train, val = [], []
    for path, read in sources:
        if path:
            faces = read(path)
            t, v = split_by_group(faces.groups, args.val_fraction, args.split_seed)
            train.append(faces.subset(t))
            val.append(faces.subset(v))
    return Faces.concat(train), Faces.concat(val)


def load_any(path: str, device: torch.device) -> torch.nn.Module:
    """A training checkpoint (.pth) or an exported TorchScript cascade."""
    try:
        return load_torchscript(path, device)
    except WeightsError:
        if not Path(path).is_file():
            raise
    try:
        return model_from_checkpoint(load_checkpoint(path)).to(device)
    except (KeyError, RuntimeError, TypeError) as e:
        raise TrainingError(f"{path}: neither a cascade TorchScript file nor a training checkpoint") from e


def training_extras(args: argparse.Namespace, val: Faces) -> Faces:
    """The training-only sources (--pts, --pseudo), weighted, without excluded or held-out people."""
    held_out = read_exclusions(args.exclude) | {g.split(":", 1)[-1] for g in np.unique(val.groups)}
    parts = []
    for kind, roots, weight in (("pts", args.pts, args.pts_weight), ("pseudo", args.pseudo, args.pseudo_weight)):
        for root in roots:
            faces, dropped = without(cached_faces(kind, root, args.cache), held_out)
            print(f"{root}: {len(faces)} faces of {len(np.unique(faces.groups))} people (weight {weight}); "
                  f"{dropped} of excluded or held-out people left out")
            parts.append(faces.weighted(weight))
    return Faces.concat(parts) if parts else None


def mined_negatives(roots: list[str], cache: str, seed: int) -> Faces | None:
    """No-face crops mined from 300-W folders (train.negatives), kept in the cache."""
    if not roots:
        return None

    key = "|".join(str(Path(r).resolve()) for r in roots) + f"|{seed}"
    path = Path(cache) / f"negatives-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz"
    if path.exists():
        with np.load(path) as saved:
            canvases = saved["canvases"]
    else:
        canvases = negatives_from_folders(roots, seed=seed, detector=HaarDetector.for_images()).canvases
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, canvases=canvases)
    n = len(canvases)
    return Faces(canvases, np.full((n, NUM_KEYPOINTS, 2), np.nan, np.float32), np.array(["negative"] * n))


def fit(args: argparse.Namespace) -> int:
    prepare_output_dir(args.output_dir)  # an unusable output folder fails before the data loads
    train, val = load_split(args)
    train, dropped = without(train, read_exclusions(args.exclude))
    if dropped:
        print(f"{dropped} training faces of excluded people left out")
    extras = training_extras(args, val)
    negatives = mined_negatives(args.negatives, args.cache, seed=0)
    val_negatives = mined_negatives([args.val_negatives] if args.val_negatives else [], args.cache, seed=1)
    train = Faces.concat([f for f in (train, extras) if f is not None])
    no_face = f" and {len(negatives)} crops with no face" if negatives is not None else ""
    if distributed.is_main():
        print(f"{len(train)} training faces{no_face}, {len(val)} validation faces ({len(np.unique(val.groups))} held-out groups)")
    if negatives is not None:
        train = Faces.concat([train, negatives])
    checkpoint = fit_loop(args, train, val, val_negatives)
    main = distributed.is_main()
    distributed.stop()
    if args.export and main:
        export_cascade(model_from_checkpoint(load_checkpoint(checkpoint)), args.export)
        print(f"wrote {args.export} and {twin_path(args.export)}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    model = load_any(args.weights, device)
    _, val = load_split(args)
    if len(val) == 0:
        raise DataError("the validation split is empty (raise --val-fraction)")
    images, targets = stack_eval(val)
    report = {"exact framing": evaluate_faces(model, images, targets, device)}
    if args.jitter:
        canvases, points = jitter_canvases(torch.from_numpy(val.canvases), torch.from_numpy(val.keypoints), 0.08, 3.0, seed=0)
        jittered = Faces(canvases.numpy(), points.numpy(), val.groups)
        report["jittered framing (scale sd 8%, shift sd 3 px)"] = evaluate_faces(model, *stack_eval(jittered), device)
    print(f"{len(val)} faces of {len(np.unique(val.groups))} held-out groups")
    for title, m in report.items():
        line = f"{title}: RMSE {m['rmse']:.3f} px, NME {m['nme']:.4f}"
        if "l1_rmse" in m:
            line += f" (level 1 alone: RMSE {m['l1_rmse']:.3f} px, NME {m['l1_nme']:.4f})"
        print(line)
    print("per keypoint RMSE (px): " + ", ".join(f"{n} {report['exact framing'][f'rmse_{n}']:.2f}" for n in KEYPOINT_NAMES))
    return 0


def export(args: argparse.Namespace) -> int:
    """Checkpoint -> the .pt and its ONNX twin; a .pt -> its twin (or both files elsewhere)."""
    source = Path(args.source)
    try:
        scripted = load_torchscript(source)
    except WeightsError:
        scripted = None
    if scripted is None:
        model = model_from_checkpoint(load_checkpoint(source))
        output = Path(args.output or "weights/cascade.pt")
    else:
        try:
            model = CascadeCNN.from_torchscript(scripted)
        except (KeyError, RuntimeError):  # another architecture (an older .pt): the legacy exporter reads it
            model = scripted
        output = Path(args.output or source)
    if output.exists() and output.samefile(source):
        export_twin(model, output)
    else:
        export_cascade(model, output)
        load_torchscript(output)  # prove the file meets the contract before saying so
        print(f"wrote {output}")
    print(f"wrote {twin_path(output)}")
    return 0


def submit(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    model = load_any(args.weights, device)
    images, _, ids = read_kaggle_csv(args.test)
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    pred = np.clip(predict(model, x, device), 0, CROP_SIZE).reshape(len(ids), -1)
    table = pd.DataFrame(pred, columns=list(COLUMNS))
    table.insert(0, "ImageId", [int(i) for i in ids])
    try:
        lookup = pd.read_csv(args.lookup)
    except (OSError, pd.errors.ParserError) as e:
        raise DataError(f"{args.lookup}: cannot read ({str(e).splitlines()[0]})") from None
    missing = {"RowId", "ImageId", "FeatureName"} - set(lookup.columns)
    if missing:
        raise DataError(f"{args.lookup}: not an IdLookupTable (missing {', '.join(sorted(missing))})")
    long = table.melt(id_vars="ImageId", var_name="FeatureName", value_name="Location")
    merged = lookup[["RowId", "ImageId", "FeatureName"]].merge(long, on=["ImageId", "FeatureName"], how="left")
    if merged["Location"].isna().any():
        row = merged[merged["Location"].isna()].iloc[0]
        raise DataError(f"{args.lookup}: RowId {row.RowId} asks for image {row.ImageId} / {row.FeatureName}, not in {args.test}")
    merged[["RowId", "Location"]].to_csv(args.output, index=False)
    print(f"wrote {args.output} ({len(merged)} rows)")
    return 0


# The command line's subcommands (train/__main__.py defines their arguments).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "fit": fit, "evaluate": evaluate, "export": export, "submit": submit, "calibrate": calibrate,
    "teacher-map": teacher_map, "pseudolabel": pseudolabel, "calibrate-box": calibrate_box,
}
# What a command fails with: one `error: ...` line each.
ERRORS = (DataError, TrainingError, TeacherError, WeightsError)
