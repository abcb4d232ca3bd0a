"""Accuracy of the whole tracker on still images, against 68-point labels mapped to the 15 Kaggle points.

    python -m benchmarks.accuracy [../shared/data/ytf68] [--weights weights/cascade.pt] [--all]

By default it scores the identities the shipped weights never saw: the validation split of
`python -m train fit` (15% of identities, split seed 0). `--all` scores every image of the folder
(for a folder of new identities). Each image goes through `Tracker.process_image`, as
`run_tracker.py --image` does: Haar detection, framing, cascade. Reports faces found, NME (mean point
error over the outer-eye-corner distance) mean and median, failures (NME > 0.10) and AUC at 0.10.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import interocular, kaggle_from_ibug68


def heldout_rows(table, val_fraction: float = 0.15, split_seed: int = 0) -> np.ndarray:
    from train.data import split_by_group

    _, val = split_by_group(table["identity"].astype(str).to_numpy(), val_fraction, split_seed)
    return val


def score(errors: np.ndarray, found: int, total: int, limit: float = 0.10) -> dict[str, float]:
    """Summary of per-face NMEs (NaN = face not found, counted as a failure)."""
    finite = errors[np.isfinite(errors)]
    curve_x = np.linspace(0, limit, 101)
    cumulative = np.array([(np.nan_to_num(errors, nan=np.inf) <= x).mean() for x in curve_x])
    return {
        "images": total,
        "found": found / total,
        "nme_mean": float(finite.mean()) if finite.size else float("nan"),
        "nme_median": float(np.median(finite)) if finite.size else float("nan"),
        "failure": float((np.nan_to_num(errors, nan=np.inf) > limit).mean()),
        "auc": float(np.trapezoid(cumulative, curve_x) / limit),
    }


def image_errors(root: Path, rows: np.ndarray, locate) -> np.ndarray:
    """NME per image; NaN where `locate(image) -> list of (15, 2) point sets` found no face on it."""
    from kaggle_framing.keypoints68 import read_keypoints68

    table = read_keypoints68(root)
    truth = kaggle_from_ibug68(table.iloc[:, 2:].to_numpy(np.float32).reshape(-1, 68, 2))
    errors = np.full(len(rows), np.nan)
    for i, row in enumerate(rows):
        image = cv2.imread(str(root / "images" / table["image"].iloc[row]))
        errors[i] = nme_of_best(locate(image), truth[row])
    return errors


def nme_of_best(candidates: list[np.ndarray], gt: np.ndarray) -> float:
    """NME of the found face meant by the (15, 2) label `gt`: the one whose points lie nearest it.
    NaN when nothing was found, or only another face (centre further than the eye-corner distance)."""
    if not candidates:
        return float("nan")
    best = min(candidates, key=lambda p: np.linalg.norm(p.mean(axis=0) - gt.mean(axis=0)))
    if np.linalg.norm(best.mean(axis=0) - gt.mean(axis=0)) > interocular(gt):
        return float("nan")
    return float(np.linalg.norm(best - gt, axis=-1).mean() / interocular(gt))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="../shared/data/ytf68")
    ap.add_argument("--weights", default="weights/cascade.pt")
    ap.add_argument("--all", action="store_true", help="score every image, not only the held-out identities")
    args = ap.parse_args()
    from tracker.app import image_detector
    from tracker.tracker import Tracker
    from kaggle_framing.keypoints68 import read_keypoints68

    root = Path(args.root)
    table = read_keypoints68(root)
    rows = np.arange(len(table)) if args.all else heldout_rows(table)
    tracker = Tracker(args.weights, "cpu", detector=image_detector())
    errors = image_errors(root, rows, lambda image: [f.points for f in tracker.process_image(image)])
    s = score(errors, int(np.isfinite(errors).sum()), len(rows))
    print(f"{s['images']} images: found {s['found']:.1%}, NME mean {s['nme_mean']:.4f}, median {s['nme_median']:.4f}, "
          f"failures {s['failure']:.1%}, AUC@0.10 {s['auc']:.3f}")


if __name__ == "__main__":
    main()
