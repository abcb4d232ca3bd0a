"""68-point label folders (`keypoints68.csv` + `images/`, the ytf68 layout): the checked CSV reader
that training, the box calibration and the benchmarks share (and its checks, which pseudo-labelled
folders' CSVs pass through too)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


# iBUG-68 labels (ytf68's keypoints68.csv, 300-W .pts files) count pixels from 1, as Matlab does: a
# point on the centre of pixel column i is labelled i + 1. Every reader subtracts this, so that the rest
# of the project sees OpenCV's 0-based pixel centres. (Evidence: a mirror-symmetric model misses ytf68's
# labels by +1 image pixel in x, and MediaPipe mapped onto them sits 2.5 px apart from its own mirror.)
IBUG_ORIGIN = 1.0


class DataError(ValueError):
    """A data file that cannot be used; the message names the file (and line) and the problem."""


def read_label_table(root: str | Path, name: str, columns: list[str], numeric: list[str]) -> pd.DataFrame:
    """The CSV `name` of the label folder `root`, checked: it reads, has `columns`, and every value of
    `numeric` is a number (the error names the line)."""
    if not Path(root).is_dir():  # (a common slip: the CSV itself named)
        raise DataError(f"{root}: not a folder (the folder holding {name} and the images is expected)")
    path = Path(root) / name
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as CSV ({str(e).splitlines()[0]})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    bad = table[numeric].apply(pd.to_numeric, errors="coerce").isna().any(axis=1).to_numpy()
    if bad.any():
        raise DataError(f"{path}:{int(np.argmax(bad)) + 2}: a keypoint value is missing or not a number")
    return table


COORDS68 = [f"{a}{i}" for i in range(68) for a in "xy"]


def read_keypoints68(root: str | Path) -> pd.DataFrame:
    """`keypoints68.csv` of a 68-point folder, checked: image, identity, x0, y0 .. x67, y67 (as
    written: 1-based; `points68` converts them)."""
    table = read_label_table(root, "keypoints68.csv", ["image", "identity", *COORDS68], COORDS68)
    if table.empty:
        raise DataError(f"{Path(root) / 'keypoints68.csv'}: no rows")
    return table


def points68(table: pd.DataFrame) -> np.ndarray:
    """(N, 68, 2) points of a `read_keypoints68` table, in 0-based pixel centres."""
    return table[COORDS68].to_numpy(np.float32).reshape(-1, 68, 2) - np.float32(IBUG_ORIGIN)
