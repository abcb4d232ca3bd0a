#!/usr/bin/env python
"""MediaPipe peer: the legacy Face Mesh solution (478 points with refine_landmarks), mapped to Kaggle-15.

    .venvs/mediapipe/bin/python benchmarks/peers/mediapipe_tracker.py --video CLIP --csv OUT.csv

Video runs Face Mesh in tracking mode (detection only when the face is lost), images in static mode;
one face (MediaPipe's default max_num_faces). Each Kaggle point is the mean of the mesh vertices listed
in `mediapipe_kaggle15.json`, chosen by `python -m benchmarks.mediapipe_mapping` on training
identities only. `--mesh-csv` also writes all 478 points (what the mapping is chosen from).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from peer_io import Frame, box_of, parser, run

from kaggle_framing import KEYPOINT_NAMES

MAPPING = Path(__file__).with_name("mediapipe_kaggle15.json")  # benchmarks.peers.MEDIAPIPE_MAPPING


def load_mapping() -> list[list[int]] | None:
    if not MAPPING.exists():
        return None
    vertices = json.loads(MAPPING.read_text())["vertices"]
    return [vertices[name] for name in KEYPOINT_NAMES]


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--mesh-csv", metavar="PATH", help="also write source,frame,face + 478 x,y pairs")
    args = ap.parse_args()
    mapping = load_mapping()
    if mapping is None and args.csv:
        raise SystemExit(f"error: {MAPPING} is missing; choose it with python -m benchmarks.mediapipe_mapping")
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=bool(args.image), max_num_faces=1,
                                           refine_landmarks=True, min_detection_confidence=0.5)
    if args.self_check:
        mesh.process(np.zeros((64, 64, 3), np.uint8))
        return 0
    mesh_out = open(args.mesh_csv, "w", newline="") if args.mesh_csv else None
    mesh_writer = csv.writer(mesh_out, lineterminator="\n") if mesh_out else None

    def locate(frame: Frame):
        h, w = frame.image.shape[:2]
        result = mesh.process(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB))
        faces = []
        for face_id, landmarks in enumerate(result.multi_face_landmarks or []):
            points = np.array([(p.x * w, p.y * h) for p in landmarks.landmark], np.float32)  # (478, 2)
            if mesh_writer:
                mesh_writer.writerow([frame.source, frame.index, face_id, *(f"{v:.2f}" for v in points.reshape(-1))])
            if mapping is not None:
                faces.append((box_of(points), np.stack([points[v].mean(axis=0) for v in mapping])))
        return faces

    try:
        return run(args, locate)
    finally:
        if mesh_out:
            mesh_out.close()


if __name__ == "__main__":
    sys.exit(main())
