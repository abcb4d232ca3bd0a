"""Video frames (tracker.app.sources.VideoSource): the tracker sees the same frames whatever the run writes."""
from __future__ import annotations

import struct
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


# A phone's display matrix in an mp4 track header (tkhd): "turn 90 degrees clockwise to show" (16.16
# fixed point, the last of the nine 2.30), as `ffmpeg -display_rotation` writes it.
def _rotate_90_tag(path: Path, width: int, height: int) -> None:
    one = 0x10000
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    matrix = at + 8 + (32 if version == 1 else 20) + 16  # after flags, times, id, duration, layer..volume
    data[matrix:matrix + 36] = struct.pack(">9i", 0, one, 0, -one, 0, 0, height * one, 0, 0x40000000)
    path.write_bytes(bytes(data))


def test_a_phone_video_stored_sideways_plays_upright(tmp_path):
    """A clip stored on its side with a rotation tag (as phones record): OpenCV's capture turns its
    frames as a player shows them (CAP_PROP_ORIENTATION_AUTO, on by default), and a run finds the
    upright face on every frame, its points on the face as shown."""
    import cv2
    import numpy as np
    import pandas as pd

    from tests.helpers import labelled_faces

    gray, truth = labelled_faces(1)[0]
    face = cv2.cvtColor(cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2BGR)
    truth = (truth + 0.5) * 2 - 0.5
    sideways = cv2.rotate(face, cv2.ROTATE_90_COUNTERCLOCKWISE)
    path = tmp_path / "phone.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, sideways.shape[1::-1])
    for _ in range(5):
        writer.write(sideways)
    writer.release()
    _rotate_90_tag(path, *sideways.shape[1::-1])
    capture = cv2.VideoCapture(str(path))
    assert capture.read()[1].shape[:2] == face.shape[:2]  # shown upright, not as stored
    capture.release()
    run = run_tracker("--video", path, "--csv", tmp_path / "rows.csv", "--no-display")
    assert run.rc == 0, run.stderr
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert len(rows) == 5
    points = rows.filter(regex="_x$|_y$").to_numpy().reshape(5, -1, 2)
    assert np.abs(points.mean(axis=1) - truth.mean(axis=0)).max() < 0.2 * np.ptp(truth[:, 0])


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_small_frames_are_decoded_on_one_thread(tmp_path, size):
    """Frames up to 640x480 decode on one thread (FFmpeg's frame threads cost CPU the tracker wants);
    larger ones on as many as FFmpeg picks by default."""
    import cv2
    import numpy as np

    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for i in range(3):
        writer.write(np.full((size[1], size[0], 3), 40 * i, np.uint8))
    writer.release()
    default = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_N_THREADS)
    source = VideoSource(path)
    try:
        assert source.capture.get(cv2.CAP_PROP_N_THREADS) == (1 if size == (640, 480) else default)
        assert sum(1 for _ in source) == 3
    finally:
        source.close()
