"""`python -m train <command>`: fit, evaluate, export, submit, teacher-map, pseudolabel. See `python -m train <command> -h`."""
from __future__ import annotations

import argparse
import sys

from kaggle_framing.keypoints68 import DataError
from kaggle_framing.weights_contract import WeightsError
from train.conventions import OFFSETS_FILE
from train.engine import TrainingError
from train.teacher import TeacherError


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kaggle", metavar="CSV", help="Kaggle training.csv (30 keypoint columns with gaps + Image)")
    p.add_argument("--ytf68", metavar="DIR", help="folder with keypoints68.csv and images/ (iBUG 68 points)")
    p.add_argument("--ytf68-offsets", default=str(OFFSETS_FILE), metavar="JSON",
                   help="per-point offsets of the --ytf68 labels from human labels, taken out of them (default: the "
                        "measured train/ytf68_offsets.json; none: the labels as they are)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of identities held out (default 0.15)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the identity split (default 0)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="train the cascade")
    add_data_args(p)
    p.add_argument("--epochs", type=positive, default=120)
    p.add_argument("--batch-size", type=positive, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--width1", type=int, default=32, help="level-1 base channels (cost grows with its square)")
    p.add_argument("--width2", type=int, default=16, help="level-2 base channels")
    p.add_argument("--ema-decay", type=fraction, default=0.998,
                   help="what is evaluated, saved and exported is a moving average of the weights; its decay per "
                        "step, warmed up from 0 as min(DECAY, (1+t)/(10+t)) at step t, so that short runs average "
                        "their last steps, not their start (default 0.998: reached after ~4500 steps)")
    p.add_argument("--centre-noise", type=float, default=1.5, help="sd (px) of noise on level-2 centres in training")
    p.add_argument("--pixel-noise", type=float, default=0.0, metavar="SD",
                   help="Gaussian noise of this sd (gray levels) on half the training crops (default 0: none)")
    p.add_argument("--no-mirror", action="store_true",
                   help="the cascade answers on each crop alone, not also on its mirror image (half the time per face)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], type=str.lower)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="data loader processes (default 0: augment in the main process)")
    p.add_argument("--output-dir", default="runs/cascade")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue from this checkpoint.pth: exactly, with its --epochs; with more --epochs, the "
                        "learning-rate schedule is stretched to the new length (same --batch-size and data)")
    p.add_argument("--init", metavar="WEIGHTS", help="start from these weights (cascade .pt or checkpoint): a fine-tune")
    p.add_argument("--export", metavar="PT", help="also write the TorchScript file here when done")
    p.add_argument("--pts", action="append", default=[], metavar="DIR",
                   help="a 300-W style folder (image + same-name .pts, any depth); training only; repeatable")
    p.add_argument("--pseudo", action="append", default=[], metavar="DIR",
                   help="a folder written by `pseudolabel`; training only; repeatable")
    p.add_argument("--pts-weight", type=float, default=1.0, help="loss weight of --pts faces (default 1)")
    p.add_argument("--pseudo-weight", type=float, default=1.0, help="loss weight of --pseudo faces (default 1)")
    p.add_argument("--exclude", metavar="TXT", help="people to keep out of every training source (one name a line)")
    p.add_argument("--negatives", action="append", default=[], metavar="DIR",
                   help="300-W folder to mine crops with no face from, for the presence score; repeatable")
    p.add_argument("--val-negatives", metavar="DIR", help="300-W folder whose no-face crops score the presence score")
    p.add_argument("--presence-weight", type=float, default=1.0, help="weight of the presence loss (default 1)")
    p.add_argument("--cache", default="runs/cache", help="folder for framed faces and mined negatives (reused)")

    p = sub.add_parser("evaluate", help="RMSE and NME of a checkpoint or TorchScript file",
                       description="Scores the validation split (the identities fit held out, with the same "
                                   "--val-fraction and --split-seed); --val-fraction 1 scores every face of the data.")
    p.add_argument("weights", help="checkpoint.pth or TorchScript .pt")
    add_data_args(p)
    p.add_argument("--jitter", action="store_true", help="also score detector-like framing jitter (scale sd 8%%, shift sd 3 px)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], type=str.lower)

    p = sub.add_parser("export", help="checkpoint -> TorchScript .pt and its ONNX twin; a .pt -> its twin")
    p.add_argument("source", help="checkpoint.pth, or a TorchScript .pt (then OUTPUT defaults to it: its twin only)")
    p.add_argument("output", nargs="?", help="TorchScript .pt to write, the .onnx beside it (default weights/cascade.pt)")

    from train import calibrate, pseudolabel

    pseudolabel.add_arguments(sub)
    calibrate.add_arguments(sub)

    p = sub.add_parser("submit", help="Kaggle submission from test.csv and IdLookupTable.csv")
    p.add_argument("weights", help="checkpoint.pth or TorchScript .pt")
    p.add_argument("--test", required=True, metavar="CSV")
    p.add_argument("--lookup", required=True, metavar="CSV", help="IdLookupTable.csv")
    p.add_argument("--output", default="submission.csv")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], type=str.lower)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from train import commands  # heavy imports after argument errors have had their say

    try:
        return getattr(commands, args.command.replace("-", "_"))(args)
    except (DataError, TrainingError, TeacherError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or ''}: {e.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
