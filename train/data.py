"""Training data: the Kaggle CSV files, 68-point folders like ytf68, the identity split and the
dataset that serves augmented 96x96 crops.

Every face is stored once as a uint8 *canvas*: the Kaggle crop with a CANVAS_MARGIN border of
context, so that rotation, scale and shift augmentation never reaches past real pixels.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from kaggle_framing import COLUMNS, CROP_SIZE, NUM_KEYPOINTS, framing_transform, kaggle_from_ibug68
from kaggle_framing.crop import warp_crop
from kaggle_framing.keypoints68 import DataError, points68, read_keypoints68
from train.conventions import corrected

CANVAS_MARGIN = 16
CANVAS = CROP_SIZE + 2 * CANVAS_MARGIN
KAGGLE_PIXELS = CROP_SIZE * CROP_SIZE


@dataclass
class Faces:
    """Faces framed on canvases: `canvases` (N, CANVAS, CANVAS) uint8, `keypoints` (N, 15, 2) canvas
    pixels (0-based pixel centres) with NaN where a label is missing, `groups` (N,) identity (or row)
    of each face, and `weights` (N,) each face's weight in the loss (its source's weight; 1 by default)."""

    canvases: np.ndarray
    keypoints: np.ndarray
    groups: np.ndarray
    weights: np.ndarray | None = None

    FIELDS = ("canvases", "keypoints", "groups", "weights")

    def __post_init__(self) -> None:
        if self.weights is None:
            self.weights = np.ones(len(self.canvases), np.float32)

    def __len__(self) -> int:
        return len(self.canvases)

    def subset(self, index: np.ndarray) -> "Faces":
        return Faces(*(getattr(self, f)[index] for f in self.FIELDS))

    def weighted(self, weight: float) -> "Faces":
        return Faces(self.canvases, self.keypoints, self.groups, np.full(len(self), weight, np.float32))

    @staticmethod
    def concat(parts: list["Faces"]) -> "Faces":
        return Faces(*(np.concatenate([getattr(p, f) for p in parts]) for f in Faces.FIELDS))


def parse_image(text: str, where: str) -> np.ndarray:
    """A Kaggle `Image` field (9216 space-separated 0-255 values) -> (96, 96) uint8."""
    try:
        values = np.array(text.split(), dtype=np.float32)
    except ValueError:
        raise DataError(f"{where}: Image has a value that is not a number") from None
    if values.size != KAGGLE_PIXELS:
        raise DataError(f"{where}: Image has {values.size} pixels, expected {KAGGLE_PIXELS} (96 x 96)")
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: Image has pixel values outside 0-255")
    return values.astype(np.uint8).reshape(CROP_SIZE, CROP_SIZE)


def _csv_rows(handle: TextIO, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each row of an open CSV file; bytes that are not text end it with a
    DataError naming the line."""
    reader = csv.reader(handle)
    try:
        for row in reader:
            yield reader.line_num, row
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}:{reader.line_num + 1}: not a text CSV ({getattr(e, 'reason', e)})") from None


def read_kaggle_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a Kaggle `training.csv` or `test.csv`.

    Returns images (N, 96, 96) uint8, keypoints (N, 15, 2) crop pixels with NaN for gaps (all NaN
    for test.csv, which has no labels) and the `ImageId` of each row (the row number if absent).
    Raises DataError naming the line for a malformed row.
    """
    path = Path(path)
    try:
        handle = path.open(newline="")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    images, keypoints, ids = [], [], []
    with handle:
        rows = _csv_rows(handle, path)
        _, header = next(rows, (0, None))
        if header is None or "Image" not in header:
            raise DataError(f"{path}: not a Kaggle keypoints CSV (no 'Image' column in the header)")
        missing = [c for c in COLUMNS if c not in header]
        if 0 < len(missing) < len(COLUMNS):  # none at all is test.csv: images without labels
            raise DataError(f"{path}: keypoint columns missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        image_col = header.index("Image")
        label_cols = [header.index(c) for c in COLUMNS] if not missing else None
        id_col = header.index("ImageId") if "ImageId" in header else None
        for line, row in rows:
            where = f"{path}:{line}"
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{where}: {len(row)} fields, expected {len(header)} (truncated or malformed row)")
            images.append(parse_image(row[image_col], where))
            if label_cols is None:
                values = [np.nan] * len(COLUMNS)
            else:
                try:
                    values = [float(row[c]) if row[c].strip() else np.nan for c in label_cols]
                except ValueError:
                    raise DataError(f"{where}: a keypoint value is not a number") from None
                if any(np.isnan(x) != np.isnan(y) for x, y in zip(values[::2], values[1::2])):
                    raise DataError(f"{where}: a keypoint with only one of its x and y")
            keypoints.append(values)
            if id_col is not None and not row[id_col].strip().isdigit():
                raise DataError(f"{where}: ImageId {row[id_col]!r} is not a whole number")
            ids.append(row[id_col].strip() if id_col is not None else str(len(ids) + 1))
    if not images:
        raise DataError(f"{path}: no rows")
    return np.stack(images), np.array(keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 2), ids


def kaggle_faces(path: str | Path) -> Faces:
    """Kaggle training rows on canvases (the 96x96 image padded by repeating its border)."""
    images, keypoints, ids = read_kaggle_csv(path)
    m = CANVAS_MARGIN
    canvases = np.stack([cv2.copyMakeBorder(i, m, m, m, m, cv2.BORDER_REPLICATE) for i in images])
    # Kaggle rows carry no identity: each row is its own group.
    return Faces(canvases, keypoints + m, np.array([f"kaggle:{i}" for i in ids]))


def ytf68_faces(root: str | Path, offsets: np.ndarray | None = None) -> Faces:
    """Faces of a 68-point folder, mapped to the 15 Kaggle points and framed like the Kaggle data
    (scale and shift onto the Kaggle mean shape, as `kaggle_framing.framing_transform`); with
    `offsets`, each point moved to the human labels' convention (`train.conventions`)."""
    root = Path(root)
    table = read_keypoints68(root)
    points = kaggle_from_ibug68(points68(table))
    if offsets is not None:
        points = corrected(points, offsets)
    images = [root / "images" / name for name in table["image"]]
    return framed_faces(list(zip(images, points, table["identity"].astype(str))))


def framed_faces(items: list[tuple[Path, np.ndarray, str]]) -> Faces:
    """Faces of (image path, 15 points in image pixels, identity) items, each framed on a canvas."""
    canvases, keypoints, groups = [], [], []
    for image, points, identity in items:
        gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise DataError(f"{image}: missing or not an image")
        canvas, on_canvas = frame_on_canvas(gray, points)
        canvases.append(canvas)
        keypoints.append(on_canvas)
        groups.append(identity)
    if not canvases:
        return Faces(np.zeros((0, CANVAS, CANVAS), np.uint8), np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.array([], str))
    return Faces(np.stack(canvases), np.stack(keypoints), np.array(groups))


def frame_on_canvas(gray: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face whose 15 points (image pixels) are given, framed like the Kaggle data on a canvas:
    (CANVAS, CANVAS) uint8 and the points in canvas pixels."""
    matrix = framing_transform(points)
    matrix[:, 2] += CANVAS_MARGIN
    on_canvas = (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    return warp_crop(gray, matrix, CANVAS), on_canvas


def split_by_group(groups: np.ndarray, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation row indices, with every group (identity) wholly on one side."""
    names = np.unique(groups)
    rng = np.random.default_rng(seed)
    val_names = rng.choice(names, size=int(round(val_fraction * len(names))), replace=False)
    is_val = np.isin(groups, val_names)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class KeypointDataset(Dataset):
    """(1, 96, 96) float crop in [0, 1], (15, 2) keypoints in crop pixels (NaN = unlabelled; all NaN
    = a crop with no face) and the face's weight in the loss."""

    def __init__(self, faces: Faces, transform) -> None:
        self.faces = faces
        self.transform = transform

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        image = tv_tensors.Image(torch.from_numpy(self.faces.canvases[i])[None])
        points = tv_tensors.KeyPoints(torch.from_numpy(self.faces.keypoints[i]), canvas_size=(CANVAS, CANVAS))
        image, points = self.transform(image, points)
        return image.as_subclass(torch.Tensor), points.as_subclass(torch.Tensor), float(self.faces.weights[i])
