"""Choose, and write down, which MediaPipe Face Mesh vertices make each of the 15 Kaggle keypoints.

    python -m benchmarks.mediapipe_mapping [../shared/data/ytf68] [--images 600]   (needs --setup-peers first)

Runs the MediaPipe peer (static images, 478 points) on images of the ytf68 TRAINING identities only
(never the held-out ones the benchmark scores), and for each Kaggle point ranks the 478 vertices by
their mean distance to the labelled point (iBUG-68 mapped as for every system), over the
outer-eye-corner distance. The point becomes the mean of the best k vertices, k = 1..5, whichever
has the least mean error. Writes `benchmarks/peers/mediapipe_kaggle15.json` (vertices and errors)
and prints the table with the anatomical first guess beside it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.accuracy import heldout_rows
from benchmarks.peers import MEDIAPIPE_MAPPING as MAPPING, PEERS
from kaggle_framing import KEYPOINT_NAMES, interocular, kaggle_from_ibug68
from kaggle_framing.keypoints68 import points68, read_keypoints68
from train.teacher import MESH_POINTS

HOW = ("For each Kaggle point, the 478 Face Mesh vertices were ranked by mean distance (over the outer-eye-corner "
       "distance) to the labelled point on {images} images of ytf68 training identities (none held out); the point is "
       "the mean of the best k vertices, k = 1..5, whichever had the least error.")
MAX_AVERAGED = 5
# The first guess, from MediaPipe's canonical face model topology (subject's left = image right).
ANATOMICAL = {
    "left_eye_center": [473], "right_eye_center": [468], "left_eye_inner_corner": [362],
    "left_eye_outer_corner": [263], "right_eye_inner_corner": [133], "right_eye_outer_corner": [33],
    "left_eyebrow_inner_end": [285], "left_eyebrow_outer_end": [300], "right_eyebrow_inner_end": [55],
    "right_eyebrow_outer_end": [70], "nose_tip": [1], "mouth_left_corner": [291], "mouth_right_corner": [61],
    "mouth_center_top_lip": [0], "mouth_center_bottom_lip": [17],
}


def training_rows(table: pd.DataFrame, count: int, seed: int = 0) -> np.ndarray:
    """`count` rows of identities outside the held-out split, drawn at random."""
    train = np.setdiff1d(np.arange(len(table)), heldout_rows(table))
    return np.sort(np.random.default_rng(seed).choice(train, size=min(count, len(train)), replace=False))


def mesh_points(root: Path, table: pd.DataFrame, rows: np.ndarray, work: Path) -> np.ndarray:
    """(N, 478, 2) mesh of each row's image (NaN where MediaPipe found no face)."""
    folder = work / "images"
    folder.mkdir()
    for row in rows:
        (folder / f"{row:05d}.jpg").symlink_to((root / "images" / table["image"].iloc[row]).resolve())
    peer = PEERS["mediapipe"]
    mesh_csv = work / "mesh.csv"
    subprocess.run([str(peer.python()), str(peer.script), "--image", str(folder), "--mesh-csv", str(mesh_csv)],
                   check=True, capture_output=True)
    out = np.full((len(rows), MESH_POINTS, 2), np.nan)
    where = {row: i for i, row in enumerate(rows)}
    for line in mesh_csv.read_text().splitlines():
        fields = line.split(",")
        if fields[2] == "0":
            out[where[int(Path(fields[0]).stem)]] = np.array(fields[3:], float).reshape(MESH_POINTS, 2)
    return out


def choose(mesh: np.ndarray, truth: np.ndarray) -> tuple[dict[str, list[int]], dict[str, float]]:
    """Per Kaggle point, the best-k vertex average and its mean error (over the eye-corner distance)."""
    found = np.isfinite(mesh).all(axis=(1, 2))
    mesh, truth = mesh[found], truth[found]
    norm = interocular(truth)[:, None]
    vertices, errors = {}, {}
    for j, name in enumerate(KEYPOINT_NAMES):
        per_vertex = (np.linalg.norm(mesh - truth[:, None, j], axis=-1) / norm).mean(axis=0)  # (478,)
        ranked = np.argsort(per_vertex)[:MAX_AVERAGED]
        options = [(point_error(mesh, truth, j, ranked[:k]), ranked[:k]) for k in range(1, MAX_AVERAGED + 1)]
        error, best = min(options, key=lambda o: o[0])
        vertices[name], errors[name] = sorted(int(v) for v in best), round(float(error), 4)
    return vertices, errors


def point_error(mesh: np.ndarray, truth: np.ndarray, j: int, vertices) -> float:
    estimate = mesh[:, list(vertices)].mean(axis=1)
    return float((np.linalg.norm(estimate - truth[:, j], axis=-1) / interocular(truth)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", default="../shared/data/ytf68")
    ap.add_argument("--images", type=int, default=600, help="training-identity images used (default 600)")
    args = ap.parse_args()
    if not PEERS["mediapipe"].installed():
        raise SystemExit("error: MediaPipe is not installed; run python -m benchmarks --setup-peers")
    root = Path(args.root)
    table = read_keypoints68(root)
    rows = training_rows(table, args.images)
    truth = kaggle_from_ibug68(points68(table.iloc[rows]).astype(np.float64))
    with tempfile.TemporaryDirectory() as work:
        mesh = mesh_points(root, table, rows, Path(work))
    found = np.isfinite(mesh).all(axis=(1, 2))
    vertices, errors = choose(mesh, truth)
    guess = {name: round(point_error(mesh[found], truth[found], j, ANATOMICAL[name]), 4)
             for j, name in enumerate(KEYPOINT_NAMES)}
    MAPPING.write_text(json.dumps({
        "how": HOW.format(images=int(found.sum())),
        "images": int(found.sum()), "vertices": vertices, "error": errors, "anatomical_guess": ANATOMICAL,
        "anatomical_error": guess,
    }, indent=1) + "\n")
    print(f"{found.sum()} of {len(rows)} training-identity images with a face; wrote {MAPPING}")
    print(f"{'keypoint':26} {'chosen':>22} {'error':>7}   {'guess':>6} {'error':>7}")
    for name in KEYPOINT_NAMES:
        print(f"{name:26} {str(vertices[name]):>22} {errors[name]:7.4f}   {str(ANATOMICAL[name]):>6} {guess[name]:7.4f}")


if __name__ == "__main__":
    main()
