#!/usr/bin/env python
"""The floor: the tracker's Haar face box with the Kaggle mean shape placed in it, no model at all.

    python benchmarks/peers/floor_tracker.py --video CLIP --csv OUT.csv

Runs with the project's own python (OpenCV's Haar cascades, `kaggle_framing`). Detects on every
frame with the tracker's video detector, or its still-image detector for images; the mean shape is
placed with `HaarDetector.framing_from_box`, the box-to-crop framing the tracker starts tracks from.
"""
from __future__ import annotations

import sys

import cv2
from peer_io import Frame, parser, run

from kaggle_framing import MEAN_SHAPE, apply_affine, invert_affine
from tracker.haar_detector import HaarDetector


def main() -> int:
    args = parser(__doc__).parse_args()
    if args.image:
        detector = HaarDetector.for_images()  # the tracker's own settings for still images
    else:
        detector = HaarDetector()
    if args.self_check:
        return 0

    def locate(frame: Frame):
        image = frame.image
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        return [(tuple(map(float, box[:4])), apply_affine(invert_affine(HaarDetector.framing_from_box(box)), MEAN_SHAPE))
                for box in detector.detect(gray)]

    return run(args, locate)


if __name__ == "__main__":
    sys.exit(main())
