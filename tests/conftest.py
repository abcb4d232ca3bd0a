"""Shared fixtures: tiny data sets in the real file formats, built in a temporary folder.

- `kaggle_training`: a Kaggle `training.csv` (30 keypoint columns in `kaggle_framing.COLUMNS` order +
  `Image`, 9216 space-separated 0-255 ints). The labels are real rows of
  `kaggle/training_labels.csv` of the shared data (or its copy in tests/fixtures; tests.helpers.data) (complete rows, rows with only the 4 keypoints of the
  4755 sparse Kaggle rows, and rows with other gaps); the images are synthetic faces drawn at those
  labels (the Kaggle pixels are not in the shared data).
- `kaggle_test`: `test.csv` (ImageId, Image) and `IdLookupTable.csv` (RowId, ImageId, FeatureName,
  Location empty).
- `ytf68_small`: 12 frames of 4 identities copied from ytf68 (`../shared/data/ytf68`, else the committed
  fixture, which holds the same 12; YouTube Faces as packaged by Udacity's P1_Facial_Keypoints, MIT
  licence) with their `keypoints68.csv` rows.

The project root is importable through `pythonpath = ["."]` in pyproject.toml.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from kaggle_framing import COLUMNS, CROP_SIZE, KEYPOINT_NAMES, MEAN_SHAPE
from tests.helpers import ROOT, SHARED, YTF68, data, require  # noqa: F401 - ROOT, SHARED: for the tests that import them from here
from train.__main__ import main

# Tiny models on tiny batches: one thread is fastest, and on a shared CPU much faster than
# competing for cores (a 1-epoch fit took 7 s with 2 threads next to another job, 2 s with 1).
torch.set_num_threads(1)

KAGGLE_LABELS = data("kaggle/training_labels.csv")

# The 4 keypoints that the 4755 sparse rows of the real training.csv label.
SPARSE_KEYPOINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")
N_COMPLETE, N_SPARSE, N_OTHER = 8, 6, 2


@pytest.fixture(scope="session")
def real_labels() -> np.ndarray:
    """(7049, 30) labels of the real Kaggle training.csv, columns in COLUMNS order, NaN for gaps."""
    return pd.read_csv(require(KAGGLE_LABELS))[list(COLUMNS)].to_numpy(np.float64)


# ---------------------------------------------------------------------------------------------
# Kaggle files


def synthetic_face(labels: np.ndarray, seed: int) -> np.ndarray:
    """A 96x96 uint8 face-like drawing (skin ellipse, dark eyes, nose, mouth) on noise, placed at the
    labelled keypoints (the mean shape where a keypoint is unlabelled)."""
    rng = np.random.default_rng(seed)
    points = labels.reshape(-1, 2).copy()
    gaps = np.isnan(points).any(axis=1)
    points[gaps] = MEAN_SHAPE[gaps]
    p = {name: points[i] for i, name in enumerate(KEYPOINT_NAMES)}
    image = np.clip(rng.normal(70, 20, (CROP_SIZE, CROP_SIZE)), 0, 255).astype(np.uint8)

    def pt(xy) -> tuple[int, int]:
        return int(round(float(xy[0]))), int(round(float(xy[1])))

    centre = (p["left_eye_center"] + p["right_eye_center"] + p["mouth_center_bottom_lip"]) / 3
    cv2.ellipse(image, pt(centre), (36, 46), 0, 0, 360, 170, -1)
    for name in ("left_eye_center", "right_eye_center"):
        cv2.circle(image, pt(p[name]), 4, 40, -1)
    for a, b in (("left_eyebrow_inner_end", "left_eyebrow_outer_end"), ("right_eyebrow_inner_end", "right_eyebrow_outer_end")):
        cv2.line(image, pt(p[a]), pt(p[b]), 60, 2)
    cv2.line(image, pt((p["left_eye_center"] + p["right_eye_center"]) / 2), pt(p["nose_tip"]), 120, 3)
    cv2.line(image, pt(p["mouth_left_corner"]), pt(p["mouth_right_corner"]), 50, 3)
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def image_field(image: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in image.ravel())


@dataclass
class KaggleTraining:
    path: Path
    labels: np.ndarray  # (N, 30) float64, NaN gaps, COLUMNS order
    images: np.ndarray  # (N, 96, 96) uint8


def pick_label_rows(labels: np.ndarray) -> np.ndarray:
    """Row numbers: complete rows, 4-keypoint rows and rows with other gaps, as in the real file."""
    sparse_cols = [COLUMNS.index(f"{n}_{a}") for n in SPARSE_KEYPOINTS for a in "xy"]
    labelled = ~np.isnan(labels)
    complete = np.flatnonzero(labelled.all(axis=1))
    only_four = labelled.sum(axis=1) == len(sparse_cols)
    only_four &= labelled[:, sparse_cols].all(axis=1)
    sparse = np.flatnonzero(only_four)
    other = np.flatnonzero(~labelled.all(axis=1) & ~only_four)
    return np.concatenate([complete[:N_COMPLETE], sparse[:N_SPARSE], other[:N_OTHER]])


def write_kaggle_training(folder: Path, real_labels: np.ndarray) -> KaggleTraining:
    folder.mkdir(parents=True, exist_ok=True)
    labels = real_labels[pick_label_rows(real_labels)]
    images = np.stack([synthetic_face(row, seed=i) for i, row in enumerate(labels)])
    table = pd.DataFrame(labels, columns=list(COLUMNS))
    table["Image"] = [image_field(i) for i in images]
    path = folder / "training.csv"
    table.to_csv(path, index=False)  # NaN -> empty field, floats at full precision
    return KaggleTraining(path, labels, images)


@pytest.fixture
def kaggle_training(tmp_path: Path, real_labels: np.ndarray) -> KaggleTraining:
    return write_kaggle_training(tmp_path / "kaggle", real_labels)


@dataclass
class KaggleTest:
    test_csv: Path
    lookup_csv: Path
    images: np.ndarray
    lookup: pd.DataFrame


def write_kaggle_test(folder: Path) -> KaggleTest:
    """3 test images; the lookup asks for all 30 values of image 1, the 4 sparse keypoints of image 2
    and a few values of image 3 (the real table also asks for subsets)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(123)
    images = np.stack([synthetic_face(MEAN_SHAPE.reshape(-1) + rng.normal(0, 2, 30), seed=100 + i) for i in range(3)])
    pd.DataFrame({"ImageId": [1, 2, 3], "Image": [image_field(i) for i in images]}).to_csv(folder / "test.csv", index=False)
    wanted = [(1, c) for c in COLUMNS]
    wanted += [(2, f"{n}_{a}") for n in SPARSE_KEYPOINTS for a in "xy"]
    wanted += [(3, c) for c in ("nose_tip_x", "nose_tip_y", "mouth_left_corner_x")]
    lookup = pd.DataFrame(
        {"RowId": range(1, len(wanted) + 1), "ImageId": [i for i, _ in wanted], "FeatureName": [f for _, f in wanted],
         "Location": [np.nan] * len(wanted)}
    )
    lookup.to_csv(folder / "IdLookupTable.csv", index=False)
    return KaggleTest(folder / "test.csv", folder / "IdLookupTable.csv", images, lookup)


@pytest.fixture
def kaggle_test(tmp_path: Path) -> KaggleTest:
    return write_kaggle_test(tmp_path / "kaggle_test")


# ---------------------------------------------------------------------------------------------
# ytf68-like folder

YTF68_IDENTITIES, YTF68_PER_IDENTITY = 4, 3


def write_ytf68_small(folder: Path) -> Path:
    table = pd.read_csv(require(YTF68 / "keypoints68.csv"))
    counts = table["identity"].value_counts()
    identities = sorted(counts[counts >= YTF68_PER_IDENTITY].index)[:YTF68_IDENTITIES]
    rows = pd.concat([table[table["identity"] == i].head(YTF68_PER_IDENTITY) for i in identities])
    for name in rows["image"]:
        target = folder / "images" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(YTF68 / "images" / name, target)
    rows.to_csv(folder / "keypoints68.csv", index=False)
    return folder


@pytest.fixture
def ytf68_small(tmp_path: Path) -> Path:
    return write_ytf68_small(tmp_path / "ytf68")


# ---------------------------------------------------------------------------------------------
# One short training run shared by the export / submit / evaluate tests (training is the slow part).


@dataclass
class TrainedRun:
    data: KaggleTraining
    output_dir: Path
    rc: int
    stdout: str

    @property
    def checkpoint(self) -> Path:
        return self.output_dir / "checkpoint.pth"


@pytest.fixture(scope="session")
def kaggle_run(tmp_path_factory: pytest.TempPathFactory, real_labels: np.ndarray) -> TrainedRun:
    import contextlib
    import io

    base = tmp_path_factory.mktemp("kaggle_run")
    data = write_kaggle_training(base / "data", real_labels)
    out = base / "run"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        rc = main(fit_args(data.path, out, epochs=1))
    return TrainedRun(data, out, rc, buffer.getvalue())


def fit_args(data: Path, output_dir: Path, epochs: int = 1, source: str = "--kaggle", *extra: str) -> list[str]:
    return [
        "fit", source, str(data), "--epochs", str(epochs), "--batch-size", "4", "--device", "cpu",
        "--output-dir", str(output_dir), *extra,
    ]


@pytest.fixture(name="fit_args")
def fit_args_fixture():
    """`fit_args(data, output_dir, epochs=1, source="--kaggle", *extra)`: argv of a tiny `fit` run."""
    return fit_args
