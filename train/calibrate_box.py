"""Calibrate a detector's box -> Kaggle framing mapping (its `box_center`, `box_scale`).

    python -m train calibrate-box [../shared/data/ytf68] [--detector haar|yunet]

For every labelled face the detector (its still-image settings) finds, the Kaggle crop fitted to its
true points, turned upright by the candidate's angle about the box's centre as the tracker turns its
crop, is expressed in units of the box (centre offset / box size, crop side / box width); the
medians are the mapping, and the spreads say how much framing jitter a fresh detection brings (what
the model must absorb).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import CROP_SIZE, apply_affine, framing_transform, kaggle_from_ibug68
from kaggle_framing.keypoints68 import points68, read_keypoints68
from tracker.detectors import make_detector


def box_units(root: Path, detector_name: str = "haar") -> tuple[np.ndarray, int]:
    """(found, 3) array of (centre x / w, centre y / h, side / w) of the true framing, and the face count."""
    table = read_keypoints68(root)
    points = kaggle_from_ibug68(points68(table))  # 0-based pixel centres
    detector = make_detector(detector_name, images=True)
    rows = []
    for name, pts in zip(table["image"], points):
        gray = cv2.imread(str(root / "images" / name), cv2.IMREAD_GRAYSCALE)
        nose = pts[10]
        boxes = [b for b in detector.detect(gray) if b[0] <= nose[0] <= b[0] + b[2] and b[1] <= nose[1] <= b[1] + b[3]]
        if not boxes:
            continue
        x, y, w, h = boxes[0][:4]
        angle = float(boxes[0][4]) if len(boxes[0]) > 4 else 0.0
        upright = apply_affine(cv2.getRotationMatrix2D((float(x + w / 2), float(y + h / 2)), angle, 1.0), pts)
        m = framing_transform(upright)
        scale = m[0, 0]
        cx, cy = (CROP_SIZE / 2 - m[0, 2]) / scale, (CROP_SIZE / 2 - m[1, 2]) / scale
        rows.append(((cx - x) / w, (cy - y) / h, CROP_SIZE / scale / w))
    return np.array(rows), len(table)


def calibrate_box(args: argparse.Namespace) -> int:
    """`python -m train calibrate-box [DIR] [--detector NAME]`: the medians, to paste into the detector."""
    units, total = box_units(Path(args.root), args.detector)
    median, spread = np.median(units, axis=0), units.std(axis=0)
    print(f"{args.detector}: {len(units)}/{total} faces found ({len(units) / total:.1%})")
    print(f"box_center = ({median[0]:.3f}, {median[1]:.3f})  # sd {spread[0]:.3f}, {spread[1]:.3f} of the box")
    print(f"box_scale = {median[2]:.3f}  # sd {spread[2]:.3f}")
    return 0
