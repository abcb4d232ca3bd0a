"""benchmarks/readme_picture.py: the README's picture is made by a command and committed small."""
from __future__ import annotations

from pathlib import Path

import cv2

from benchmarks.readme_picture import CLIP, picture
from tests.helpers import require
from tracker.app.sources import read_frames

ROOT = Path(__file__).resolve().parents[1]
PICTURE = ROOT / "docs" / "annotated_frame.jpg"


def test_picture_is_an_annotated_frame_of_the_sample_clip():
    require(CLIP)
    image = picture(10, 2.0)
    assert image is not None and image.shape == (600, 800, 3)
    frame = cv2.resize(read_frames(CLIP, 11)[0][-1], (800, 600), interpolation=cv2.INTER_CUBIC)
    drawn = (cv2.absdiff(image, frame).max(axis=2) > 60).mean()
    assert 0.002 < drawn < 0.05, f"{drawn:.2%} of the pixels drawn on"


def test_committed_picture_is_small_and_shown():
    assert PICTURE.stat().st_size < 100_000
    assert cv2.imread(str(PICTURE)).shape == (600, 800, 3)
    readme = (ROOT / "README.md").read_text()
    assert f"]({PICTURE.relative_to(ROOT).as_posix()})" in readme.split("## ")[0], "not at the top of the README"
