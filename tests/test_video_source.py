"""Video frames (tracker.app.sources.VideoSource): the tracker sees the same frames whatever the run writes."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import require, run_tracker, write_clip
from tracker.app.sources import VideoSource

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "talking_face.mp4"


def test_the_csv_is_the_same_with_and_without_an_annotated_video(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", require(SAMPLE), 40)
    alone, beside = tmp_path / "alone.csv", tmp_path / "beside.csv"
    assert run_tracker("--video", clip, "--csv", alone, "--no-display").rc == 0
    assert run_tracker("--video", clip, "--csv", beside, "--output", tmp_path / "out.mp4", "--no-display").rc == 0
    assert len(alone.read_bytes().splitlines()) > 1
    assert alone.read_bytes() == beside.read_bytes()


class _Clock:
    """A capture whose position (ms) is whatever the test says."""

    def __init__(self, ms: float) -> None:
        self.ms = ms

    def get(self, prop: int) -> float:
        return self.ms


@pytest.mark.parametrize("ms, expected", [(520.0, 0.52), (float("nan"), 0.4), (0.0, 0.4), (90.0, 0.4)])
def test_frame_time_is_the_videos_own_or_index_over_fps(ms, expected):
    """A frame's time is its timestamp in the video (a variable frame rate keeps its own times); where
    the container gives none that moves forward (NaN, 0, or before the frame before), index / fps."""
    source = VideoSource.__new__(VideoSource)
    source.capture, source.fps = _Clock(ms), 25.0
    assert source._timestamp(10, previous=0.36) == pytest.approx(expected)
