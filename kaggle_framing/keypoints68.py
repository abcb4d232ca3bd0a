"""68-point label folders (`keypoints68.csv` + `images/`, the ytf68 layout): the checked CSV reader
that training, the box calibration and the benchmarks share."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class DataError(ValueError):
    """A data file that cannot be used; the message names the file (and line) and the problem."""


def read_keypoints68(root: str | Path) -> pd.DataFrame:
    """`keypoints68.csv` of a 68-point folder, checked: image, identity, x0, y0 .. x67, y67."""
    if not Path(root).is_dir():  # (a common slip: the CSV itself named)
        raise DataError(f"{root}: not a folder (the folder holding keypoints68.csv and the images is expected)")
    path = Path(root) / "keypoints68.csv"
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as CSV ({str(e).splitlines()[0]})") from None
    expected = ["image", "identity"] + [f"{a}{i}" for i in range(68) for a in "xy"]
    missing = [c for c in expected if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    coords = table[expected[2:]].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1).to_numpy()
    if bad.any():
        raise DataError(f"{path}:{int(np.argmax(bad)) + 2}: a keypoint value is missing or not a number")
    if table.empty:
        raise DataError(f"{path}: no rows")
    return table
