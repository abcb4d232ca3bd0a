"""Crops that hold no face, for the model's face-presence score.

Mined from labelled photos (300-W folders: every face in them is labelled, so what lies away from
the labels is background): background windows of face-like sizes, windows framed a face's width or
more off a face (what a track that lost its face sees), and the Haar detector's false positives.
Each is cut as the tracker cuts a face box (`HaarDetector.framing_from_box`) on a canvas like the faces', so the
same augmentation applies; their keypoints are all NaN, which is what marks a negative.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import CROP_SIZE, NUM_KEYPOINTS, framing_transform, invert_affine
from train.data import CANVAS, CANVAS_MARGIN, Faces
from train.folders import pts_items
from kaggle_framing.crop import warp_crop
from tracker.haar_detector import HaarDetector


def face_square(points: np.ndarray) -> np.ndarray:
    """x, y, side of the image square that the Kaggle framing of these 15 points crops."""
    inverse = invert_affine(framing_transform(points))
    x0, y0 = inverse[:, 2]
    return np.array([x0, y0, CROP_SIZE * inverse[0, 0]], np.float32)


def overlap(square: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """Intersection over union of one (x, y, side) square with each of (K, 3)."""
    x, y, s = square
    ix = np.clip(np.minimum(x + s, squares[:, 0] + squares[:, 2]) - np.maximum(x, squares[:, 0]), 0, None)
    iy = np.clip(np.minimum(y + s, squares[:, 1] + squares[:, 2]) - np.maximum(y, squares[:, 1]), 0, None)
    inter = ix * iy
    return inter / (s * s + squares[:, 2] ** 2 - inter)


def cut(gray: np.ndarray, square: np.ndarray) -> np.ndarray:
    """A canvas framed as the tracker frames a detector box of this square."""
    matrix = HaarDetector.framing_from_box((square[0], square[1], square[2], square[2])).astype(np.float64)
    matrix[:, 2] += CANVAS_MARGIN
    return warp_crop(gray, matrix, CANVAS)


def mine(gray: np.ndarray, faces: np.ndarray, rng: np.random.Generator, detector=None, per_kind: int = 2) -> list[np.ndarray]:
    """Negative canvases from one photo whose faces are the (K, 3) squares `faces`."""
    h, w = gray.shape
    out = []
    # The detector's false positives (boxes clear of every labelled face). Photos hold faces
    # nobody labelled, so every box it finds is also kept clear of the windows below.
    boxes = detector.detect(gray) if detector is not None else np.zeros((0, 4), np.float32)
    found = np.array([box[:3] for box in boxes], np.float32).reshape(-1, 3)
    for square in found[:per_kind * 2]:
        if overlap(square, faces).max() < 0.1:
            out.append(cut(gray, square))
    avoid = np.concatenate([faces, found])
    # Background at face-like sizes, clear of every face.
    for _ in range(per_kind * 10):
        if len(out) >= per_kind * 3:
            break
        side = faces[rng.integers(len(faces)), 2] * rng.uniform(0.6, 1.6)
        if side >= min(h, w):
            continue
        square = np.array([rng.uniform(0, w - side), rng.uniform(0, h - side), side], np.float32)
        if overlap(square, avoid).max() < 0.1:
            out.append(cut(gray, square))
    # A face's own framing moved a face's width or more away: a track left behind by its face.
    for _ in range(per_kind):
        x, y, side = faces[rng.integers(len(faces))]
        angle = rng.uniform(0, 2 * np.pi)
        shift = side * rng.uniform(0.8, 1.5)
        square = np.array([x + shift * np.cos(angle), y + shift * np.sin(angle), side * rng.uniform(0.8, 1.25)], np.float32)
        if overlap(square, avoid).max() < 0.2:
            out.append(cut(gray, square))
    return out


def textures(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Synthetic clutter: smoothed noise at several scales, stripes, flat fields."""
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            cell = int(rng.integers(2, 24))
            small = rng.integers(0, 256, (CANVAS // cell + 2,) * 2).astype(np.uint8)
            canvas = cv2.resize(small, (CANVAS, CANVAS), interpolation=cv2.INTER_CUBIC)
        elif kind == 1:
            period = rng.uniform(4, 40)
            angle = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[:CANVAS, :CANVAS]
            wave = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
            canvas = np.clip(128 + rng.uniform(20, 120) * wave, 0, 255).astype(np.uint8)
        else:
            canvas = np.full((CANVAS, CANVAS), rng.integers(0, 256), np.uint8)
            canvas = cv2.add(canvas, rng.normal(0, rng.uniform(1, 20), canvas.shape).astype(np.int8), dtype=cv2.CV_8U)
        out.append(canvas)
    return out


def negatives_from_folders(roots: list[str | Path], seed: int = 0, per_kind: int = 2, textures_per_folder: int = 300,
                           detector=None) -> Faces:
    """Negative canvases mined from every photo of these 300-W folders, plus synthetic textures."""
    rng = np.random.default_rng(seed)
    canvases = []
    for root in roots:
        # Faces of one photo (`12345_1.jpg`, `12345_2.jpg`) are labelled in files of their own.
        photos: dict[str, tuple[Path, list[np.ndarray]]] = {}
        for image, points, _ in pts_items(root):
            photos.setdefault(str(image.with_name(image.stem.rsplit("_", 1)[0])), (image, []))[1].append(points)
        for image, faces in photos.values():
            gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
            if gray is not None:
                canvases += mine(gray, np.stack([face_square(p) for p in faces]), rng, detector, per_kind)
        canvases += textures(textures_per_folder, rng)
    n = len(canvases)
    return Faces(np.stack(canvases), np.full((n, NUM_KEYPOINTS, 2), np.nan, np.float32), np.array(["negative"] * n))
