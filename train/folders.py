"""More people: readers for 300-W style folders (human labels) and pseudo-labelled folders, the
exclusion list, and the on-disk cache that makes tens of thousands of faces cheap to reload.

- 300-W / iBUG layout (HELEN, AFW, ...): `name.jpg` beside `name.pts` (68 lines `x y`, or the
  `version: 1 / n_points: 68 / { ... }` form, counted from 1), at any depth. Points are mapped 68 -> 15
  as ytf68's.
- Pseudo-labelled folder (written by `python -m train pseudolabel`): `keypoints15.csv` with
  `image` (path relative to the folder), `identity`, `confidence` and the 30 Kaggle columns in
  image pixels.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from kaggle_framing import COLUMNS, NUM_KEYPOINTS, kaggle_from_ibug68
from kaggle_framing.keypoints68 import IBUG_ORIGIN, read_label_table
from train.data import DataError, Faces, framed_faces

PSEUDO_LABELS = "keypoints15.csv"
CACHE_VERSION = 2
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_LFW_NAME = re.compile(r"^([A-Za-z].*)_\d{4}$")  # LFW files: First_Last_0001.jpg -> First_Last


def identity_of(path: Path) -> str:
    """A person's name where the file name carries one (LFW style `First_Last_NNNN`), else the
    photo's own name up to its face index (`12345_2` -> `12345`: faces of one photo stay together)."""
    stem = path.name.split(".")[0]
    match = _LFW_NAME.match(stem)
    if match:
        return match.group(1)
    return stem.rsplit("_", 1)[0] if re.fullmatch(r"\d+_\d+", stem) else stem


def read_exclusions(path: str | Path | None) -> set[str]:
    """Names in an exclusion file (one a line, `#` comments), e.g. `exclude_identities.txt`."""
    if not path:
        return set()
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read the exclusion list ({e.strerror})") from None
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def read_pts(path: Path) -> np.ndarray:
    """(68, 2) points of a `.pts` file, with or without the `version/n_points/{}` wrapper, in 0-based
    pixel centres (the file counts from 1: `IBUG_ORIGIN`)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                rows.append((float(parts[0]), float(parts[1])))
            except ValueError:
                continue  # header lines such as "n_points: 68"
    if len(rows) != 68 or not np.isfinite(rows).all():
        raise DataError(f"{path}: expected 68 'x y' lines, found {len(rows)}")
    return np.array(rows, np.float32) - np.float32(IBUG_ORIGIN)


def pts_items(root: str | Path) -> list[tuple[Path, np.ndarray, str]]:
    """(image, 15 points, identity) of every image with a same-name `.pts` under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    items = []
    for pts in sorted(root.rglob("*.pts")):
        image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES if pts.with_suffix(s).is_file()), None)
        if image is not None:
            items.append((image, kaggle_from_ibug68(read_pts(pts)), f"{root.name}:{identity_of(image)}"))
    if not items:
        raise DataError(f"{root}: no image with a same-name .pts file (300-W layout)")
    return items


def read_pseudo_labels(root: str | Path) -> pd.DataFrame:
    """`keypoints15.csv` of a pseudo-labelled folder, checked."""
    return read_label_table(root, PSEUDO_LABELS, ["image", "identity", "confidence", *COLUMNS], list(COLUMNS))


def pseudo_items(root: str | Path) -> list[tuple[Path, np.ndarray, str]]:
    root = Path(root)
    table = read_pseudo_labels(root)
    points = table[list(COLUMNS)].to_numpy(np.float32).reshape(-1, NUM_KEYPOINTS, 2)
    return [(root / name, p, str(who)) for name, p, who in zip(table["image"], points, table["identity"])]


def cached_faces(kind: str, root: str | Path, cache_dir: str | Path | None) -> Faces:
    """Faces of a `pts` or `pseudo` folder, framed once and kept in `cache_dir` (an .npz named by
    the folder and its label file's size and time: relabelling or new files make a new cache)."""
    items = {"pts": pts_items, "pseudo": pseudo_items}[kind](root)
    if cache_dir is None:
        return framed_faces(items)
    label_file = Path(root) / PSEUDO_LABELS if kind == "pseudo" else None
    # CACHE_VERSION: caches of an earlier label convention (1-based points) are never read back.
    stamp = f"{CACHE_VERSION}|{Path(root).resolve()}|{len(items)}|{items[0][0]}|{items[-1][0]}"
    if label_file is not None:
        stat = label_file.stat()
        stamp += f"|{stat.st_size}|{stat.st_mtime_ns}"
    cache = Path(cache_dir) / f"{kind}-{Path(root).name}-{hashlib.sha1(stamp.encode()).hexdigest()[:10]}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            return Faces(saved["canvases"], saved["keypoints"], saved["groups"])
    faces = framed_faces(items)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, canvases=faces.canvases, keypoints=faces.keypoints, groups=faces.groups)
    tmp.replace(cache)
    return faces


def without(faces: Faces, names: set[str]) -> tuple[Faces, int]:
    """`faces` minus every face of a person in `names`, and how many faces that removed."""
    if not names:
        return faces, 0
    person = np.array([g.split(":", 1)[-1] for g in faces.groups])
    keep = ~np.isin(person, list(names))
    return faces.subset(np.flatnonzero(keep)), int((~keep).sum())
