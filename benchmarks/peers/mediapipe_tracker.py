#!/usr/bin/env python
"""MediaPipe peer: the legacy Face Mesh solution (478 points with refine_landmarks), mapped to Kaggle-15.

    .venvs/mediapipe/bin/python benchmarks/peers/mediapipe_tracker.py --video CLIP --csv OUT.csv

Video runs Face Mesh in tracking mode (detection only when the face is lost), images in static mode;
one face (MediaPipe's default max_num_faces). The 478 points become the 15 Kaggle ones by
`--mapping`, both made on training identities only:
- `learned` (default): `train/teacher_map.npz`, ridge regression on the Procrustes-aligned mesh
  (`python -m train teacher-map`; the teacher of `python -m train pseudolabel`);
- `vertices`: each point the mean of the mesh vertices listed in `mediapipe_kaggle15.json`
  (`python -m benchmarks.mediapipe_mapping`).
`--mesh-csv` also writes all 478 points (what the vertex table is chosen from).
"""
from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from peer_io import Frame, box_of, parser, run

from kaggle_framing import KEYPOINT_NAMES
from train.teacher import TeacherError, TeacherMap  # NumPy only

VERTEX_TABLE = Path(__file__).with_name("mediapipe_kaggle15.json")  # benchmarks.peers.MEDIAPIPE_MAPPING
Mapping = Callable[[np.ndarray], np.ndarray]  # (478, 2) mesh, MediaPipe's coordinates x w, h -> (15, 2)


def vertex_table() -> Mapping:
    if not VERTEX_TABLE.exists():
        raise SystemExit(f"error: {VERTEX_TABLE} is missing; choose it with python -m benchmarks.mediapipe_mapping")
    vertices = json.loads(VERTEX_TABLE.read_text())["vertices"]
    table = [vertices[name] for name in KEYPOINT_NAMES]
    return lambda mesh: np.stack([mesh[v].mean(axis=0) for v in table])


def learned_map() -> Mapping:
    try:
        teacher = TeacherMap.load()
    except TeacherError as e:
        raise SystemExit(f"error: {e}") from None
    # The map was fitted on meshes with pixel centres at integers (train/teacher_mesh.py): 0.5 less
    # than MediaPipe's normalised coordinates times the image size.
    return lambda mesh: teacher(mesh[None] - 0.5)[0]


MAPPINGS = {"learned": learned_map, "vertices": vertex_table}


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--mapping", choices=MAPPINGS, default="learned", help="478 -> 15 points (default learned)")
    ap.add_argument("--mesh-csv", metavar="PATH", help="also write source,frame,face + 478 x,y pairs")
    args = ap.parse_args()
    mapping = MAPPINGS[args.mapping]() if args.csv else None
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
                faces.append((box_of(points), mapping(points)))
        return faces

    try:
        return run(args, locate)
    finally:
        if mesh_out:
            mesh_out.close()


if __name__ == "__main__":
    sys.exit(main())
