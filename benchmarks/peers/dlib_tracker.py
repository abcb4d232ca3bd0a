#!/usr/bin/env python
"""dlib peer: HOG face detector + the 68-point shape predictor (iBUG-68 -> Kaggle-15 as for the labels).

    .venvs/dlib/bin/python benchmarks/peers/dlib_tracker.py --video CLIP --csv OUT.csv

The predictor file comes with the `face_recognition_models` package. Stateless: every frame is
detected afresh (dlib has no tracker). Frames are upsampled once for detection, face_recognition's
default (without it the HOG detector misses faces under 80 px).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import dlib
import numpy as np
from peer_io import Frame, box_of, parser, run

from kaggle_framing import kaggle_from_ibug68

UPSAMPLE = 1  # times the frame is doubled before detection


def predictor_path() -> Path:
    # find_spec does not import the package (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: face_recognition_models is not installed in this environment")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"


def main() -> int:
    args = parser(__doc__).parse_args()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_path()))
    if args.self_check:
        return 0

    def locate(frame: Frame):
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        rects = sorted(detector(rgb, UPSAMPLE), key=lambda r: -r.area())
        faces = []
        for rect in rects:
            shape = predictor(rgb, rect)
            points68 = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
            faces.append((box_of(points68), kaggle_from_ibug68(points68)))
        return faces

    return run(args, locate)


if __name__ == "__main__":
    sys.exit(main())
