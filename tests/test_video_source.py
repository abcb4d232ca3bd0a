"""Video frames (tracker.app.sources.VideoSource): the tracker sees the same frames whatever the run writes."""
from __future__ import annotations

from pathlib import Path

from tests.helpers import require, run_tracker, write_clip

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "talking_face.mp4"


def test_the_csv_is_the_same_with_and_without_an_annotated_video(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", require(SAMPLE), 40)
    alone, beside = tmp_path / "alone.csv", tmp_path / "beside.csv"
    assert run_tracker("--video", clip, "--csv", alone, "--no-display").rc == 0
    assert run_tracker("--video", clip, "--csv", beside, "--output", tmp_path / "out.mp4", "--no-display").rc == 0
    assert len(alone.read_bytes().splitlines()) > 1
    assert alone.read_bytes() == beside.read_bytes()
