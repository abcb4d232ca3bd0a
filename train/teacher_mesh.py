#!/usr/bin/env python
"""The teacher's raw answers: MediaPipe Face Mesh (legacy solution, 478 points, refine_landmarks) on
images and on their mirror images. Runs in MediaPipe's own venv (it needs numpy < 2), so it imports
only cv2, numpy, mediapipe and NumPy-only train.teacher; `python -m train pseudolabel` drives it.

    .venvs/mediapipe/bin/python train/teacher_mesh.py LIST.txt OUT.npz [--pad 0.3]

LIST.txt holds one image path a line. OUT.npz: `mesh` and `mirror_mesh`, (N, 478, 2) float32 image
pixels, pixel centres at integers (NaN where no face was found); `mirror_mesh` is found on the
mirrored image and left in that image's coordinates (the driver maps the 15 points back with
x -> width - 1 - x); `size` (N, 2) width and height. Tight crops are padded by `--pad` of their
size on every side first (the face detector misses faces that fill the frame).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for train.teacher
from train.teacher import MESH_POINTS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("list")
    ap.add_argument("output")
    ap.add_argument("--pad", type=float, default=0.3, help="padding on each side, as a share of the image size")
    args = ap.parse_args()
    paths = [line for line in open(args.list).read().splitlines() if line]
    mesh = np.full((len(paths), MESH_POINTS, 2), np.nan, np.float32)
    mirror_mesh = mesh.copy()
    size = np.zeros((len(paths), 2), np.int32)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.5) as model:
        for i, path in enumerate(paths):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                continue
            h, w = image.shape[:2]
            size[i] = w, h
            px, py = int(args.pad * w), int(args.pad * h)
            fill = [int(v) for v in image.reshape(-1, 3).mean(axis=0)]
            padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=fill)
            ph, pw = padded.shape[:2]
            for out, img in ((mesh, padded), (mirror_mesh, padded[:, ::-1])):
                result = model.process(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB))
                if result.multi_face_landmarks:
                    pts = np.array([(p.x * pw - 0.5, p.y * ph - 0.5) for p in result.multi_face_landmarks[0].landmark], np.float32)
                    out[i] = pts
            # Back to the unpadded image's pixels (the mirrored one's padding is symmetric).
            mesh[i] -= (px, py)
            mirror_mesh[i] -= (px, py)
            if i % 500 == 0:
                print(f"{i}/{len(paths)}", file=sys.stderr, flush=True)
    np.savez(args.output, mesh=mesh, mirror_mesh=mirror_mesh, size=size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
