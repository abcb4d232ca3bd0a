"""Video frames in gray for runs that show and write no pictures (tracker.sources.VideoSource(gray=True)):
decoded from the luma plane alone where the video allows, else from the BGR decoding."""
from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaggle_framing.crop import to_gray
from tests.cli_helpers import require, write_clip
from tracker.sources import VideoSource

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "talking_face.mp4"


def frames_of(source: VideoSource, count: int) -> list[np.ndarray]:
    try:
        return [frame.image for frame in itertools.islice(source, count)]
    finally:
        source.close()


@pytest.mark.parametrize("fourcc", ["mp4v", "MJPG"])  # limited-range and full-range (JPEG) luma
def test_luma_frames_match_the_gray_of_the_colour_frames(tmp_path, fourcc):
    clip = write_clip(tmp_path / f"clip.{'avi' if fourcc == 'MJPG' else 'mp4'}", require(SAMPLE), 20, fourcc)
    colour = frames_of(VideoSource(clip), 20)
    source = VideoSource(clip, gray=True)
    assert source.luma_gain is not None  # this OpenCV build hands over 8-bit luma: the fast path runs
    gray = frames_of(source, 20)
    assert len(gray) == len(colour) == 20
    for g, c in zip(gray, colour):
        assert c.ndim == 3 and g.shape == c.shape[:2] and g.dtype == np.uint8
        difference = np.abs(g.astype(int) - to_gray(c))
        assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 3


def test_a_first_frame_too_flat_to_check_luma_on_falls_back_to_colour(tmp_path):
    clip = tmp_path / "fade_in.mp4"
    frames = [np.full((96, 128, 3), 0, np.uint8)] + [np.full((96, 128, 3), 40 * i, np.uint8) for i in range(1, 5)]
    frames[-1][20:60, 30:90] = (30, 120, 220)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (128, 96))
    for frame in frames:
        writer.write(frame)
    writer.release()
    source = VideoSource(clip, gray=True)
    assert source.luma_gain is None
    gray = frames_of(source, 10)
    colour = frames_of(VideoSource(clip), 10)
    assert len(gray) == 5 and all(np.array_equal(g, to_gray(c)) for g, c in zip(gray, colour))
