"""The teacher behind `python -m train pseudolabel`: MediaPipe Face Mesh, mapped to our 15 points by a
learned linear map, on each image and its mirror image.

The map: each 478-point mesh is aligned (similarity, Procrustes) onto a reference mesh, and ridge
regression takes the aligned mesh to the 15 labelled points under the same alignment; the answer is
mapped back. It is fitted on ytf68's training identities only and scored on its held-out ones
(`python -m train teacher-map`), and stored in `train/teacher_map.npz` (a few hundred kB).

A face's pseudo-label is the mean of the map's answers on the image and on the mirrored image
(mapped back); how far apart the two are, over the outer-eye-corner distance, is its
`confidence` column (lower is surer), and faces where they disagree too much are dropped.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kaggle_framing import NUM_KEYPOINTS, apply_affine, fit_similarity, interocular, invert_affine, mirror_average
from train.shipped import MAP_FILE

TEACHER_SCRIPT = Path(__file__).with_name("teacher_mesh.py")
MESH_POINTS = 478  # MediaPipe Face Mesh with refine_landmarks (train/teacher_mesh.py)


class TeacherError(RuntimeError):
    pass


# MediaPipe's venv: the benchmark's peer venv, made by `python -m benchmarks --setup-peers`
# (benchmarks.peers.PEERS["mediapipe"] is this folder; benchmarks imports train, never the reverse).
TEACHER_VENV = Path(__file__).resolve().parents[1] / ".venvs" / "mediapipe"


def teacher_python(venv: Path = TEACHER_VENV) -> Path:
    """The python of MediaPipe's venv, where its setup completed."""
    python = venv / "bin" / "python"
    if not ((venv / ".complete").exists() and python.exists()):
        raise TeacherError("MediaPipe is not installed: run python -m benchmarks --setup-peers (its own venv, numpy < 2)")
    return python


def run_teacher(images: list[Path], output: Path) -> dict[str, np.ndarray]:
    """Face Mesh on `images` and their mirror images (the venv script), kept in `output` (.npz):
    a finished file is read back instead of run again."""
    if not output.exists():
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
            listing.write("\n".join(str(p) for p in images) + "\n")
            listing.flush()
            tmp = output.with_name(output.stem + ".tmp.npz")
            proc = subprocess.run([str(teacher_python()), str(TEACHER_SCRIPT), listing.name, str(tmp)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise TeacherError(f"the teacher failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
            tmp.replace(output)
    with np.load(output) as saved:
        return {k: saved[k] for k in saved.files}


def _aligned(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, K, 2) points moved by each face's (N, 2, 3) similarity."""
    return np.einsum("nij,nkj->nki", matrices[:, :, :2], points) + matrices[:, None, :, 2]


def _align(mesh: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each mesh's similarity onto `reference` (Procrustes), and the meshes so aligned."""
    matrices = np.stack([fit_similarity(m, reference) for m in mesh])
    return matrices, _aligned(matrices, mesh)


class TeacherMap:
    """Aligned 478-point mesh -> 15 Kaggle points (ridge regression; see the module docstring)."""

    def __init__(self, reference: np.ndarray, weights: np.ndarray) -> None:
        self.reference = reference.astype(np.float32)  # (478, 2), zero mean, unit RMS radius
        self.weights = weights.astype(np.float32)  # (2 * 478 + 1, 30)

    def __call__(self, mesh: np.ndarray) -> np.ndarray:
        """(N, 478, 2) meshes (NaN rows where no face) -> (N, 15, 2) points in the same pixels."""
        out = np.full((len(mesh), NUM_KEYPOINTS, 2), np.nan, np.float32)
        ok = np.isfinite(mesh).all(axis=(1, 2))
        if ok.any():
            matrices, aligned = _align(mesh[ok], self.reference)
            features = np.concatenate([aligned.reshape(len(aligned), -1), np.ones((len(aligned), 1), np.float32)], 1)
            points = (features @ self.weights).reshape(-1, NUM_KEYPOINTS, 2)
            out[ok] = [apply_affine(invert_affine(m), p) for m, p in zip(matrices, points)]
        return out

    @classmethod
    def fit(cls, mesh: np.ndarray, truth: np.ndarray, alpha: float = 1e-3) -> "TeacherMap":
        """Fit on (N, 478, 2) meshes (all found) and their (N, 15, 2) labelled points."""
        centred = mesh[0] - mesh[0].mean(axis=0)
        reference = centred / np.sqrt((centred**2).sum(axis=1).mean())
        for _ in range(3):  # generalised Procrustes: the reference becomes the mean aligned mesh
            mean = _align(mesh, reference)[1].mean(axis=0)
            mean -= mean.mean(axis=0)
            reference = mean / np.sqrt((mean**2).sum(axis=1).mean())
        matrices, aligned = _align(mesh, reference)
        target = _aligned(matrices, truth)
        x = np.concatenate([aligned.reshape(len(mesh), -1), np.ones((len(mesh), 1))], 1).astype(np.float64)
        penalty = alpha * len(x) * np.eye(x.shape[1])
        penalty[-1, -1] = 0  # the intercept is not shrunk
        weights = np.linalg.solve(x.T @ x + penalty, x.T @ target.reshape(len(mesh), -1))
        return cls(reference, weights)

    def save(self, path: Path = MAP_FILE, **info) -> None:
        np.savez_compressed(path, reference=self.reference, weights=self.weights, **info)

    @classmethod
    def load(cls, path: Path = MAP_FILE) -> "TeacherMap":
        if not Path(path).exists():
            raise TeacherError(f"{path}: no teacher map; fit it with python -m train teacher-map --ytf68 DIR")
        with np.load(path) as saved:
            return cls(saved["reference"], saved["weights"])


def label(raw: dict[str, np.ndarray], mapping: TeacherMap) -> tuple[np.ndarray, np.ndarray]:
    """Teacher answers -> (N, 15, 2) points (mean of image and mirror) and (N,) disagreement
    (mean point distance between the two over the eye-corner distance; NaN where either missed)."""
    direct = mapping(raw["mesh"])
    # x -> w - 1 - x: pixel centres counted from 0, each image its own width
    axis = raw["size"][:, 0].astype(np.float32)[:, None] - 1
    points, apart = mirror_average(direct, mapping(raw["mirror_mesh"]), axis)
    disagreement = apart / interocular(points)
    return points, disagreement
