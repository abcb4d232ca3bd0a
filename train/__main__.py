"""`python -m train <command>`: fit, evaluate, export, submit, calibrate, teacher-map, pseudolabel,
calibrate-box. See `python -m train <command> -h`."""
from __future__ import annotations

import argparse
import sys

from tracker.detectors import DEFAULT_DETECTOR, DETECTORS
from train.shipped import MAP_FILE, OFFSETS_FILE


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


def add_data_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--kaggle", metavar="CSV", help="Kaggle training.csv (30 keypoint columns with gaps + Image)")
    p.add_argument("--ytf68", metavar="DIR", help="folder with keypoints68.csv and images/ (iBUG 68 points)")
    p.add_argument("--ytf68-offsets", default=str(OFFSETS_FILE), metavar="JSON",
                   help="per-point offsets of the --ytf68 labels from human labels, taken out of them (default: the "
                        "measured train/ytf68_offsets.json; none: the labels as they are)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of identities held out (default 0.15)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the identity split (default 0)")


def add_device_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], type=str.lower)


def add_fit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="train the cascade")
    sources = p.add_argument_group("sources", "labelled faces; every source is split by identity, --pts and "
                                               "--pseudo are training only")
    add_data_args(sources)
    sources.add_argument("--pts", action="append", default=[], metavar="DIR",
                         help="a 300-W style folder (image + same-name .pts, any depth); training only; repeatable")
    sources.add_argument("--pseudo", action="append", default=[], metavar="DIR",
                         help="a folder written by `pseudolabel`; training only; repeatable")
    sources.add_argument("--pts-weight", type=float, default=1.0, help="loss weight of --pts faces (default 1)")
    sources.add_argument("--pseudo-weight", type=float, default=1.0, help="loss weight of --pseudo faces (default 1)")
    sources.add_argument("--exclude", metavar="TXT", help="people to keep out of every training source (one name a line)")
    sources.add_argument("--negatives", action="append", default=[], metavar="DIR",
                         help="300-W folder to mine crops with no face from, for the presence score; repeatable")
    sources.add_argument("--val-negatives", metavar="DIR", help="300-W folder whose no-face crops score the presence score")
    sources.add_argument("--cache", default="runs/cache", help="folder for framed faces and mined negatives (reused)")

    model = p.add_argument_group("model", "the cascade's shape; with --init or --resume it comes from the weights")
    model.add_argument("--width1", type=int, help="level-1 base channels (cost grows with its square; default 32)")
    model.add_argument("--width2", type=int, help="level-2 base channels (default 16)")
    model.add_argument("--mirror", action=argparse.BooleanOptionalAction,
                       help="whether the cascade also answers on each crop's mirror image and averages (default: yes, "
                            "or as the --init weights do); --no-mirror: one pass a face, half the time")
    model.add_argument("--init", metavar="WEIGHTS",
                       help="start from these weights (cascade .pt or checkpoint), their shape with them: a fine-tune")

    schedule = p.add_argument_group("schedule", "optimiser, learning rate and augmentation")
    schedule.add_argument("--epochs", type=positive, default=120)
    schedule.add_argument("--batch-size", type=positive, default=64)
    schedule.add_argument("--lr", type=float, default=3e-3)
    schedule.add_argument("--weight-decay", type=float, default=1e-4)
    schedule.add_argument("--ema-decay", type=fraction, default=0.998,
                          help="what is evaluated, saved and exported is a moving average of the weights; its decay per "
                               "step, warmed up from 0 as min(DECAY, (1+t)/(10+t)) at step t, so that short runs average "
                               "their last steps, not their start (default 0.998: reached after ~4500 steps)")
    schedule.add_argument("--centre-noise", type=float, default=1.5, help="sd (px) of noise on level-2 centres in training")
    schedule.add_argument("--pixel-noise", type=float, default=0.0, metavar="SD",
                          help="Gaussian noise of this sd (gray levels) on half the training crops (default 0: none)")
    schedule.add_argument("--presence-weight", type=float, default=1.0, help="weight of the presence loss (default 1)")
    add_device_arg(schedule)
    schedule.add_argument("--seed", type=int, default=0)
    schedule.add_argument("--workers", type=int, default=0,
                          help="data loader processes (default 0: augment in the main process)")

    output = p.add_argument_group("output")
    output.add_argument("--output-dir", default="runs/cascade")
    output.add_argument("--resume", metavar="CHECKPOINT",
                        help="continue from this checkpoint.pth: exactly, with its --epochs; with more --epochs, the "
                             "learning-rate schedule is stretched to the new length (same --batch-size and data)")
    output.add_argument("--export", metavar="PT", help="also write the TorchScript file here when done")


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fold the median signed error on training faces into the output offset")
    p.add_argument("checkpoint")
    p.add_argument("--pts", action="append", default=[], metavar="DIR",
                   help="human-labelled 300-W style folder the model trained on (repeatable)")
    p.add_argument("--ytf68", metavar="DIR", help="also ytf68's training people (its held-out ones are scored)")
    p.add_argument("--ytf68-offsets", default=str(OFFSETS_FILE), metavar="JSON",
                   help="as fit's: the per-point offsets taken out of ytf68's labels (none: as they are)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="identities held out, as fit (default 0.15)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--cache", default="runs/cache", help="folder for framed faces (as fit's)")
    p.add_argument("--output", required=True, metavar="CHECKPOINT")
    p.add_argument("--no-mirror", action="store_true",
                   help="calibrate the cascade answering on each crop alone, without its mirror image (stored: the "
                        "exported file then runs one pass a face)")


def add_teacher(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher-map", help="fit and score the teacher's map from MediaPipe's 478 points to ours")
    p.add_argument("--pts", action="append", default=[], metavar="DIR",
                   help="fit on these human-labelled 300-W style folders (repeatable; the shipped map's way)")
    p.add_argument("--ytf68", metavar="DIR",
                   help="fit on ytf68's training people (without --pts); with --pts, measure its labels' offsets")
    p.add_argument("--offsets", default=str(OFFSETS_FILE), help="where the ytf68 offsets go (with --pts and --ytf68)")
    p.add_argument("--val-fraction", type=float, default=0.15, help="share of identities held out (default 0.15, as fit)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=1e-3, help="ridge penalty (per face)")
    p.add_argument("--max-disagreement", type=float, default=0.05, help="as pseudolabel's; reported only")
    p.add_argument("--cache", default="runs/teacher", help="where the teacher's raw answers are kept")
    p.add_argument("--output", default=str(MAP_FILE))

    p = sub.add_parser("pseudolabel", help="label every image under SRC_DIR with the teacher (a folder fit reads)")
    p.add_argument("source", metavar="SRC_DIR")
    p.add_argument("--output", required=True, metavar="DIR")
    p.add_argument("--exclude", metavar="TXT", help="names to leave out (one a line), e.g. exclude_identities.txt")
    p.add_argument("--max-disagreement", type=float, default=0.05,
                   help="drop faces whose image and mirror answers differ by more (NME units; default 0.05)")
    p.add_argument("--map", default=str(MAP_FILE), help="the teacher map (python -m train teacher-map)")
    p.add_argument("--per-identity", type=int, metavar="N", help="at most N images of one person (more people per hour)")
    p.add_argument("--max-images", type=int, metavar="N", help="at most N images in all, drawn at random")
    p.add_argument("--seed", type=int, default=0, help="seed of those draws")
    p.add_argument("--skip", type=int, default=0, metavar="N",
                   help="pass over the first N images of the draw (e.g. those an earlier --max-images N labelled)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    add_fit(sub)

    p = sub.add_parser("evaluate", help="RMSE and NME of a checkpoint or TorchScript file",
                       description="Scores the validation split (the identities fit held out, with the same "
                                   "--val-fraction and --split-seed); --val-fraction 1 scores every face of the data.")
    p.add_argument("weights", help="checkpoint.pth or TorchScript .pt")
    add_data_args(p)
    p.add_argument("--jitter", action="store_true", help="also score detector-like framing jitter (scale sd 8%%, shift sd 3 px)")
    add_device_arg(p)

    p = sub.add_parser("export", help="checkpoint -> TorchScript .pt and its ONNX twin; a .pt -> its twin")
    p.add_argument("source", help="checkpoint.pth, or a TorchScript .pt (then OUTPUT defaults to it: its twin only)")
    p.add_argument("output", nargs="?", help="TorchScript .pt to write, the .onnx beside it (default weights/cascade.pt)")

    p = sub.add_parser("submit", help="Kaggle submission from test.csv and IdLookupTable.csv")
    p.add_argument("weights", help="checkpoint.pth or TorchScript .pt")
    p.add_argument("--test", required=True, metavar="CSV")
    p.add_argument("--lookup", required=True, metavar="CSV", help="IdLookupTable.csv")
    p.add_argument("--output", default="submission.csv")
    add_device_arg(p)

    add_calibrate(sub)
    add_teacher(sub)

    p = sub.add_parser("calibrate-box", help="measure a detector's box -> Kaggle crop framing (its box_center, "
                                             "box_scale) on labelled faces")
    p.add_argument("root", nargs="?", default="../shared/data/ytf68", help="a keypoints68.csv folder (default ytf68)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS),
                   help=f"the detector measured, with its still-image settings (default {DEFAULT_DETECTOR})")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Here, not at the top: torch loads once the arguments are good (`--help` and argument errors in
    # a fraction of a second, not the ~7 s torch and its friends take).
    from train.commands import COMMANDS, ERRORS

    try:
        return COMMANDS[args.command](args)
    except ERRORS as e:
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
