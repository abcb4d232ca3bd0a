"""The tracker's stability bars on synthetic clips (benchmarks/stability.py): a still face with sensor
noise, and the same face sliding 8 px per frame."""
from pathlib import Path

import pytest

from benchmarks.stability import measure
from tests.helpers import data, require

ROOT = Path(__file__).resolve().parents[1]
FACE = data("ytf68/images/training/Luis_Fonsi_21.jpg")


@pytest.fixture(scope="module")
def numbers():
    return measure(str(ROOT / "weights/cascade.pt"), str(require(FACE)))


def test_smoothing_cuts_still_face_jitter_to_a_fifth(numbers):
    assert numbers["jitter_ratio"] <= 0.20


def test_moving_face_is_followed_without_lag(numbers):
    assert numbers["lag_frames"] <= 1.0
    assert numbers["followed"] >= 0.98
