"""`python -m benchmarks` (benchmarks/__main__.py and the modules it runs): the quick run end to end,
with the peers' venvs absent as in CI, and the CSV scoring every system goes through."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.accuracy import nme_of_best, score
from benchmarks.peers.peer_io import CSV_HEADER as PEER_HEADER
from benchmarks.systems import face_track, profile_stages, read_faces
from kaggle_framing import COLUMNS, MEAN_SHAPE, interocular
from tracker.outputs import CSV_HEADER

from tests.cli_helpers import ROOT, headless_env, require

SHARED = ROOT.parent / "shared" / "data"


def write_csv(path: Path, rows: list[tuple[str, int, np.ndarray]]) -> Path:
    lines = [",".join(CSV_HEADER)]
    lines += [",".join([source, str(frame), "0", "0", "0", "10", "10", *(f"{v:.2f}" for v in points.reshape(-1))])
              for source, frame, points in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_peers_write_the_trackers_csv_columns():
    assert PEER_HEADER == CSV_HEADER


def test_csv_points_score_to_the_known_error(tmp_path: Path):
    truth = MEAN_SHAPE.astype(np.float64) * 2 + 100
    shift = 0.05 * interocular(truth)  # every point off by 5% of the eye-corner distance
    other_face = truth + 500  # a second face elsewhere in the image: not the labelled one
    csv = write_csv(tmp_path / "k.csv", [("a.jpg", 0, other_face), ("a.jpg", 0, truth + [shift, 0]),
                                        ("b.jpg", 1, other_face)])
    faces = read_faces(csv)
    assert len(faces[("a.jpg", 0)]) == 2 and faces[("a.jpg", 0)][1].shape == (15, 2)
    errors = np.array([nme_of_best(faces.get(("a.jpg", 0), []), truth), nme_of_best(faces.get(("b.jpg", 1), []), truth),
                       nme_of_best(faces.get(("c.jpg", 2), []), truth)])
    assert errors[0] == pytest.approx(0.05, abs=1e-3)
    assert np.isnan(errors[1:]).all()  # only another face; no face at all
    s = score(errors, int(np.isfinite(errors).sum()), len(errors))
    assert s["found"] == pytest.approx(1 / 3) and s["nme_mean"] == pytest.approx(0.05, abs=1e-3)
    assert s["failure"] == pytest.approx(2 / 3)


def test_face_track_keeps_the_face_meant_and_profile_line(tmp_path: Path):
    far = MEAN_SHAPE + 300  # a false detection elsewhere, listed first
    csv = write_csv(tmp_path / "v.csv", [("v.mp4", 0, far), ("v.mp4", 0, MEAN_SHAPE), ("v.mp4", 2, MEAN_SHAPE + 1)])
    track = face_track(csv, np.tile(MEAN_SHAPE.mean(axis=0), (3, 1)))
    assert np.allclose(track[0], MEAN_SHAPE, atol=0.01) and np.isnan(track[1]).all()
    assert np.allclose(track[2], MEAN_SHAPE + 1, atol=0.01)
    assert profile_stages("9 frames, 9 face detections\nmean ms per frame: decode 1.50, detect 2.09, model 2.71\n") == {
        "decode": 1.5, "detect": 2.09, "model": 2.71}
    assert len(COLUMNS) == 30


def test_quick_run_writes_the_page_and_plots_without_peers(tmp_path: Path):
    require(SHARED / "ytf68" / "keypoints68.csv")
    page = tmp_path / "BENCHMARKS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(page), "--venvs", str(tmp_path / "no-venvs"),
         "--work-dir", str(tmp_path / "work")],
        cwd=ROOT, env=headless_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    assert len(list((tmp_path / "benchmark_plots").glob("*.png"))) >= 2
    for plot in re.findall(r"\]\((benchmark_plots/\w+\.png)\)", text):
        assert (tmp_path / plot).stat().st_size > 0
    assert text.count("not installed (run `python -m benchmarks --setup-peers`)") == 2  # dlib and MediaPipe
    accuracy = re.search(r"\| ours \(CPU\) \| (\d+) \| ([\d.]+)% \| ([\d.]+) \|", text)
    assert accuracy and int(accuracy.group(1)) > 0 and 0 <= float(accuracy.group(3)) < 1
    fps = re.search(r"\| ours \(CPU\) \| ([\d.]+) \|\n", text)
    assert fps and float(fps.group(1)) > 0
    assert re.search(r"\| ours \(CPU, unsmoothed\) \| \d+% \| [\d.]+ \|", text)
    assert "mean ms per frame: decode" in text
