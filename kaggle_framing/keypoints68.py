"""68-point label folders (`keypoints68.csv` + `images/`, the ytf68 layout): the checked CSV reader
that training, the box calibration and the benchmarks share (and its checks, which pseudo-labelled
folders' CSVs pass through too)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


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


def read_keypoints68(root: str | Path) -> pd.DataFrame:
    """`keypoints68.csv` of a 68-point folder, checked: image, identity, x0, y0 .. x67, y67."""
    coords = [f"{a}{i}" for i in range(68) for a in "xy"]
    table = read_label_table(root, "keypoints68.csv", ["image", "identity", *coords], coords)
    if table.empty:
        raise DataError(f"{Path(root) / 'keypoints68.csv'}: no rows")
    return table
