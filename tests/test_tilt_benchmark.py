"""Faces by head tilt and turn (benchmarks/tilt.py): a turned photo's labels land where its content
went, the scores pool + and - angles and are set against the upright photos, the head-turn measure
ignores tilt, and `python -m benchmarks.tilt` runs end to end on two faces, ours only."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.tilt import ANGLES, by_angle, by_turn, turn, yaw, yaw_bin_names
from kaggle_framing import MEAN_SHAPE, apply_affine, interocular
from tests.helpers import ROOT, data, headless_env, labelled_faces, require
from tests.test_benchmarks import pts_folder

YTF68 = data("ytf68")


@pytest.mark.parametrize("degrees", [15, -30, 45, 90])
def test_a_turned_images_labels_land_on_its_content(degrees):
    """A bright dot at a label is, after the turn, at the turned label; +90 takes a dot right of the
    centre to above it (counter-clockwise as seen)."""
    image = np.zeros((120, 160, 3), np.uint8)
    points = np.array([[60.0, 50.0], [100.0, 50.0], [80.0, 80.0]])  # centre (80, 60)
    cv2.circle(image, (100, 50), 3, (255, 255, 255), -1)
    turned, moved = turn(image, points, degrees)
    assert turned.shape == image.shape
    assert np.allclose(moved.mean(axis=0), points.mean(axis=0))  # turned about the points' centre
    gray = cv2.GaussianBlur(turned[..., 0].astype(np.float32), (0, 0), 2)
    y, x = np.unravel_index(np.argmax(gray), gray.shape)
    assert np.hypot(x - moved[1, 0], y - moved[1, 1]) <= 1.0
    if degrees == 90:
        assert np.allclose(moved[1], [70.0, 40.0])  # (+20, -10) from the centre -> (-10, -20)


def test_a_turned_photo_keeps_its_face_and_eye_distance():
    [(photo, truth)] = labelled_faces(1)
    turned, moved = turn(photo, truth, 30)
    back, again = turn(turned, moved, -30)
    assert np.allclose(again, truth, atol=1e-6)
    assert interocular(moved) == pytest.approx(interocular(truth))
    eye = np.round(truth[0]).astype(int)  # the face's pixels came back under the labels
    patch = np.s_[eye[1] - 3 : eye[1] + 4, eye[0] - 3 : eye[0] + 4]
    assert np.abs(back[patch].astype(int) - photo[patch]).mean() < 12


def test_scores_pool_signs_and_compare_with_upright():
    """Faces found exactly upright and at 15 degrees, twice as far off at 30, missed at 45."""
    truths = [MEAN_SHAPE * s + 100 for s in (1.0, 1.5)]
    images, candidates, angles = [], [], []
    for degrees in ANGLES:
        for truth in truths:
            images.append((Path(f"{len(images)}.png"), truth))
            off = {0: 0.02, 15: 0.02, 30: 0.04}.get(abs(degrees))
            candidates.append([] if off is None else [truth + [off * interocular(truth), 0]])
            angles.append(degrees)
    scores = by_angle(candidates, images, np.array(angles))
    assert list(scores) == [0, 15, 30, 45]
    assert [scores[a]["images"] for a in scores] == [2, 4, 4, 4]
    assert [scores[a]["found"] for a in scores] == [1, 1, 1, 0]
    assert scores[0]["nme_mean"] == pytest.approx(0.02, abs=1e-4)
    assert scores[30]["nme_vs_upright"] == pytest.approx(2.0, abs=1e-3)
    assert np.isnan(scores[45]["nme_vs_upright"])


def test_head_turn_is_the_nose_off_the_eye_line_midpoint_whatever_the_tilt():
    frontal = MEAN_SHAPE.astype(np.float64)
    assert yaw(frontal) == pytest.approx(0, abs=1e-3)
    turned = frontal.copy()
    turned[10, 0] += 0.25 * interocular(frontal)  # the nose tip a quarter of the eye distance aside
    tilt = cv2.getRotationMatrix2D((40.0, 50.0), 35, 2.0)
    assert yaw(turned) == pytest.approx(0.25, abs=1e-3) and yaw(apply_affine(tilt, turned)) == pytest.approx(0.25, abs=1e-3)
    errors = np.array([0.03, np.nan])
    bins = by_turn(errors, [(Path("a"), frontal), (Path("b"), turned)])
    names = yaw_bin_names()
    assert list(bins) == [names[0], names[2]] and bins[names[0]]["found"] == 1 and bins[names[2]]["found"] == 0


def test_the_command_tables_found_and_nme_by_angle_and_turn(tmp_path: Path):
    shared = tmp_path / "data"
    shared.mkdir()
    (shared / "ytf68").symlink_to(require(YTF68).resolve())
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.tilt", "--systems", "ours", "--faces", "2", "--data", str(shared),
         "--helen", str(pts_folder(tmp_path / "helen"))],
        cwd=ROOT, env=headless_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    row = re.search(r"^\| ours \(CPU\) \| (.*) \|$", proc.stdout, re.M)
    assert row, proc.stdout
    cells = row.group(1).split(" | ")
    assert len(cells) == 4  # 0, 15, 30 and 45 degrees
    upright = re.fullmatch(r"([\d.]+)% / ([\d.]+) / 1\.00", cells[0])
    assert upright and float(upright.group(1)) == 100 and 0 < float(upright.group(2)) < 0.1
    assert "turn 0-0.1 (" in proc.stdout and "wall time (s)" in proc.stdout
