"""Accuracy of the whole tracker on still images, against 68-point labels mapped to the 15 Kaggle points.

    python -m benchmarks.accuracy [../shared/data/ytf68] [--weights weights/cascade.pt] [--all]
    python -m benchmarks.accuracy --pts helen/testset [--detector yunet] [--resize 0.25]

By default it scores the identities the shipped weights never saw: the validation split of
`python -m train fit` (15% of identities, split seed 0). `--all` scores every image of the folder
(for a folder of new identities); `--pts DIR` every image of a 300-W style folder instead (image
beside a same-name `.pts`, e.g. HELEN's test set). Each image goes through `Tracker.process_image`,
as `run_tracker.py --image` does: detection (`--detector`: Haar by default), framing, cascade. Reports
faces found, NME (mean point error over the outer-eye-corner distance) mean and median, failures
(NME > 0.10), AUC at 0.10 and milliseconds an image. `--resize F` scores every image F times its size
(labels moved with it): the same faces smaller or larger, to check that points scale with the face.
Truth is in 0-based pixel centres, as our output (the labels' 1-based points converted when read).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import MEAN_SHAPE, apply_affine, fit_similarity, interocular, kaggle_from_ibug68
from kaggle_framing.keypoints68 import DataError, points68, read_keypoints68
from tracker import Tracker
from tracker.detectors import DEFAULT_DETECTOR, DETECTORS, make_detector

Labelled = list[tuple[Path, np.ndarray]]  # images and their (15, 2) labelled points


def ytf68_images(root: Path, heldout_only: bool = True) -> Labelled:
    """ytf68's images (of the held-out identities, or all) and their labels."""
    table = read_keypoints68(root)
    rows = heldout_rows(table) if heldout_only else np.arange(len(table))
    truth = kaggle_from_ibug68(points68(table.iloc[rows]).astype(np.float64))
    return [(root / "images" / table["image"].iloc[row], t) for row, t in zip(rows, truth)]


def pts_images(root: Path) -> Labelled:
    """Every image of a 300-W style folder (same-name `.pts` beside it) and its labels."""
    from train.folders import pts_items  # here: train's modules load torch, which the tracker's runs never need

    return [(image, points.astype(np.float64)) for image, points, _ in pts_items(root)]


def read_resized(path: Path, factor: float = 1.0) -> np.ndarray:
    """An image read `factor` times its size (area-averaged when shrunk); the labels of the resized
    image are `resized_points` of the original's."""
    image = cv2.imread(str(path))
    if factor == 1.0 or image is None:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def resized_points(points: np.ndarray, factor: float) -> np.ndarray:
    """Pixel-centre coordinates in an image resized by `factor` (OpenCV's resize: x -> (x + 0.5) f - 0.5)."""
    return (points + 0.5) * factor - 0.5


def heldout_rows(table, val_fraction: float = 0.15, split_seed: int = 0) -> np.ndarray:
    from train.data import split_by_group  # (as above)

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


def best_match(candidates: list[np.ndarray], gt: np.ndarray) -> np.ndarray | None:
    """The found face meant by the (15, 2) label `gt`: the one whose points lie nearest it. None when
    nothing was found, or only another face (centre further than the eye-corner distance)."""
    if not candidates:
        return None
    best = min(candidates, key=lambda p: np.linalg.norm(p.mean(axis=0) - gt.mean(axis=0)))
    return best if np.linalg.norm(best.mean(axis=0) - gt.mean(axis=0)) <= interocular(gt) else None


def nme_of_best(candidates: list[np.ndarray], gt: np.ndarray) -> float:
    """NME of the found face meant by `gt`; NaN when `best_match` finds none."""
    best = best_match(candidates, gt)
    return float("nan") if best is None else float(np.linalg.norm(best - gt, axis=-1).mean() / interocular(gt))


def scored(candidates: list[list[np.ndarray]], images: Labelled) -> tuple[dict[str, float], np.ndarray]:
    """Every image's found faces (`candidates[i]` for `images[i]`) scored against its label: the
    summary (`score` and `offsets` of the faces meant) and the per-image NME (NaN: not found)."""
    found = [best_match(c, truth) for c, (_, truth) in zip(candidates, images)]
    pairs = [(f, truth) for f, (_, truth) in zip(found, images) if f is not None]
    errors = np.array([nme_of_best([] if f is None else [f], truth) for f, (_, truth) in zip(found, images)])
    return score(errors, len(pairs), len(images)) | offsets(pairs), errors


def offsets(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Systematic error of (found, truth) point pairs: each face's error turned upright and scaled to
    the eye-corner distance (similarity of the truth onto the mean shape), averaged per point over the
    faces. `point_offset`: mean length of those 15 mean errors (0 for a system whose errors are only
    noise); `offset_x`, `offset_y`: their mean (the whole face shifted); `nme_unbiased`: the NME left
    with each point's mean error taken out."""
    if not pairs:
        return {"point_offset": float("nan"), "offset_x": float("nan"), "offset_y": float("nan"), "nme_unbiased": float("nan")}
    unit = float(interocular(MEAN_SHAPE))
    errors = []
    for found, truth in pairs:
        matrix = fit_similarity(truth, MEAN_SHAPE)
        errors.append((apply_affine(matrix, found) - apply_affine(matrix, truth)) / unit)
    errors = np.stack(errors)  # (N, 15, 2) in eye-corner distances
    mean = errors.mean(axis=0)
    return {"point_offset": float(np.linalg.norm(mean, axis=-1).mean()), "offset_x": float(mean[:, 0].mean()),
            "offset_y": float(mean[:, 1].mean()), "nme_unbiased": float(np.linalg.norm(errors - mean, axis=-1).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="../shared/data/ytf68")
    ap.add_argument("--weights", default="weights/cascade.pt")
    ap.add_argument("--all", action="store_true", help="score every image, not only the held-out identities")
    ap.add_argument("--pts", type=Path, metavar="DIR", help="score a 300-W style folder (image + .pts) instead")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS),
                    help=f"the face detector, with its still-image settings (default {DEFAULT_DETECTOR})")
    ap.add_argument("--resize", type=float, default=1.0, metavar="F",
                    help="score every image F times its size, its labels moved with it (default 1)")
    args = ap.parse_args()
    if not args.resize > 0:
        raise SystemExit("error: --resize must be above 0")
    try:
        images = pts_images(args.pts) if args.pts else ytf68_images(Path(args.root), heldout_only=not args.all)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    images = [(path, resized_points(truth, args.resize)) for path, truth in images]
    tracker = Tracker(args.weights, "cpu", detector=make_detector(args.detector, images=True))
    start = time.perf_counter()
    s, _ = scored([[f.points for f in tracker.process_image(read_resized(path, args.resize))] for path, _ in images], images)
    ms = (time.perf_counter() - start) / len(images) * 1e3
    print(f"{args.detector}: {s['images']} images, {ms:.0f} ms each (reading included): found {s['found']:.1%}, "
          f"NME mean {s['nme_mean']:.4f}, median {s['nme_median']:.4f}, failures {s['failure']:.1%}, "
          f"AUC@0.10 {s['auc']:.3f}; mean point offset {s['point_offset']:.4f}, "
          f"global offset x {s['offset_x']:+.2%} y {s['offset_y']:+.2%}, NME without the point offsets {s['nme_unbiased']:.4f}")


if __name__ == "__main__":
    main()
