"""More people: 300-W folders, pseudo-labelled folders, the exclusion list, several sources in one
split, the teacher's map and distributed training (all on tiny data)."""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from kaggle_framing import COLUMNS, FLIP_PERMUTATION, framing_transform, from_mirror, kaggle_from_ibug68
from train.commands import load_split, training_extras
from train.data import CANVAS, CANVAS_MARGIN, DataError, Faces, KeypointDataset, split_by_group, ytf68_faces
from train.folders import PSEUDO_LABELS, cached_faces, identity_of, pseudo_items, pts_items, read_exclusions, read_pts, without
from train.teacher import TeacherMap
from tracker.keypoint_model import KeypointModel
from train.__main__ import main
from train.augment import MirrorWithSwap
from train.conventions import OFFSETS_FILE, load_offsets
from train.engine import load_checkpoint, model_from_checkpoint, predict, stack_eval
from train.pseudolabel import sample

from tests.helpers import YTF68, require


def ytf68_example(name: str = "training/Luis_Fonsi_21.jpg") -> tuple[np.ndarray, np.ndarray]:
    """A real ytf68 image (BGR) and its 68 labelled points (the full set's first row, in the fixture too)."""
    table = pd.read_csv(require(YTF68 / "keypoints68.csv"))
    row = table[table["image"] == name].iloc[0]
    return cv2.imread(str(YTF68 / "images" / row["image"])), row.iloc[2:].to_numpy(np.float32).reshape(68, 2)


def write_pts(path: Path, points: np.ndarray, header: bool) -> None:
    lines = [f"{x:.3f} {y:.3f}" for x, y in points]
    if header:
        lines = ["version: 1", "n_points:  68", "{", *lines, "}"]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header", [False, True])
def test_pts_reader(tmp_path, header):
    """.pts files count pixels from 1; the reader gives 0-based pixel centres."""
    _, points = ytf68_example()
    write_pts(tmp_path / "a.pts", points, header)
    np.testing.assert_allclose(read_pts(tmp_path / "a.pts"), points - 1, atol=1e-3)
    (tmp_path / "b.pts").write_text("1 2\n3 4\n")
    with pytest.raises(DataError, match="expected 68"):
        read_pts(tmp_path / "b.pts")


def test_pts_folder_at_any_depth_frames_like_ytf68(tmp_path):
    image, points = ytf68_example()
    deep = tmp_path / "helen" / "trainset" / "more"
    deep.mkdir(parents=True)
    cv2.imwrite(str(deep / "12345_1.png"), image)
    write_pts(deep / "12345_1.pts", points, header=False)
    (deep / "orphan.pts").write_text("")  # no image beside it: not a face
    items = pts_items(tmp_path / "helen")
    assert [(p.name, who) for p, _, who in items] == [("12345_1.png", "helen:12345")]
    np.testing.assert_allclose(items[0][1], kaggle_from_ibug68(points - 1), atol=1e-3)
    faces = cached_faces("pts", tmp_path / "helen", tmp_path / "cache")
    again = cached_faces("pts", tmp_path / "helen", tmp_path / "cache")  # read back from the cache
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(faces.canvases, again.canvases)
    # Framed like every face: the eye centres land on the Kaggle mean shape's, give or take the fit.
    assert faces.canvases.shape == (1, 128, 128)
    assert abs(faces.keypoints[0, 0, 1] - (36.95 + 16)) < 4


def write_pseudo_folder(folder: Path, names: list[str], points: np.ndarray) -> None:
    """What `pseudolabel` writes: images elsewhere, keypoints15.csv naming them relative to the folder."""
    image, _ = ytf68_example()
    src = folder.parent / "src"
    src.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / PSEUDO_LABELS).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "identity", "confidence", *COLUMNS])
        for name, p in zip(names, points):
            cv2.imwrite(str(src / name), image)
            writer.writerow([os.path.relpath(src / name, folder), identity_of(Path(name)), "0.01", *p.reshape(-1)])


def test_pseudo_label_folder_round_trip(tmp_path):
    _, points68 = ytf68_example()
    points = np.stack([kaggle_from_ibug68(points68)] * 3)
    names = ["Ann_Lee_0001.jpg", "Ann_Lee_0002.jpg", "Bo_Wu_0001.jpg"]
    write_pseudo_folder(tmp_path / "labels", names, points)
    items = pseudo_items(tmp_path / "labels")
    assert [who for _, _, who in items] == ["Ann_Lee", "Ann_Lee", "Bo_Wu"]
    assert all(p.is_file() for p, _, _ in items)
    np.testing.assert_allclose(np.stack([p for _, p, _ in items]), points, atol=0.01)
    faces = cached_faces("pseudo", tmp_path / "labels", None)
    assert len(faces) == 3 and np.isfinite(faces.keypoints).all()


def test_malformed_pseudo_labels_name_the_line(tmp_path):
    (tmp_path / PSEUDO_LABELS).write_text("image,identity,confidence," + ",".join(COLUMNS) + "\nx.jpg,a,0.1," + ",".join(["1"] * 29) + ",oops\n")
    with pytest.raises(DataError, match=rf"{PSEUDO_LABELS}:2"):
        pseudo_items(tmp_path)


def test_identity_of_lfw_and_photo_names():
    assert identity_of(Path("George_W_Bush_0042.jpg")) == "George_W_Bush"
    assert identity_of(Path("12345_2.jpg")) == "12345"
    assert identity_of(Path("23_1_0_2017.jpg.chip.jpg")) == "23_1_0_2017"


def test_exclusion_list_and_held_out_people_stay_out_of_training(tmp_path, ytf68_small):
    _, points68 = ytf68_example()
    table = pd.read_csv(ytf68_small / "keypoints68.csv")
    people = sorted(table["identity"].unique())
    names = [f"{p}_0001.jpg" for p in people] + ["Hidden_Person_0001.jpg", "New_Person_0001.jpg"]
    write_pseudo_folder(tmp_path / "labels", names, np.stack([kaggle_from_ibug68(points68)] * len(names)))
    (tmp_path / "exclude.txt").write_text("# hidden test people\nHidden_Person\n")
    assert read_exclusions(tmp_path / "exclude.txt") == {"Hidden_Person"}
    args = argparse.Namespace(ytf68=str(ytf68_small), ytf68_offsets="none", kaggle=None, val_fraction=0.5, split_seed=0, pts=[],
                              pseudo=[str(tmp_path / "labels")], pts_weight=1.0, pseudo_weight=0.5,
                              exclude=str(tmp_path / "exclude.txt"), cache=None)
    train, val = load_split(args)
    extras = training_extras(args, val)
    held_out = set(val.groups)
    assert held_out and not held_out & set(train.groups)  # the identity split
    # The pseudo-labelled people who are held out of ytf68 or on the list are left out; the rest stay.
    assert set(extras.groups) == (set(people) - held_out) | {"New_Person"}
    assert np.all(extras.weights == 0.5) and np.all(train.weights == 1.0)
    assert without(Faces.concat([train, extras]), {"New_Person"})[1] == 1


def test_teacher_map_recovers_a_linear_rule():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(478, 2)).astype(np.float32)
    # Each point a weighted mean of a few vertices, as anatomical points are of mesh vertices.
    truth_rule = rng.random((15, 478)) * (rng.random((15, 478)) < 0.01)
    truth_rule[:, 0] += 0.1
    truth_rule /= truth_rule.sum(axis=1, keepdims=True)
    meshes, points = [], []
    for _ in range(1300):  # more faces than the map's 957 inputs, as in real use
        shape = base + 0.05 * rng.normal(size=base.shape)
        angle, scale, shift = rng.uniform(-0.3, 0.3), rng.uniform(20, 60), rng.uniform(50, 150, 2)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        meshes.append((shape @ rot.T) * scale + shift)
        points.append(((truth_rule @ shape) @ rot.T) * scale + shift)
    meshes, points = np.array(meshes, np.float32), np.array(points, np.float32)
    mapping = TeacherMap.fit(meshes[:1200], points[:1200], alpha=1e-6)
    error = np.abs(mapping(meshes[1200:]) - points[1200:]).max()
    assert error < 0.5  # pixels, on faces some 80 px across
    missing = meshes[:2].copy()
    missing[1] = np.nan
    assert np.isnan(mapping(missing)[1]).all() and np.isfinite(mapping(missing)[0]).all()


def test_mirrored_answers_map_back_with_each_images_width():
    points = np.random.default_rng(1).uniform(10, 90, (2, 15, 2)).astype(np.float32)
    widths = np.array([100, 120], np.float32)
    mirrored = points[:, list(FLIP_PERMUTATION)].copy()
    mirrored[..., 0] = widths[:, None] - 1 - mirrored[..., 0]  # pixel centres from 0: x -> w - 1 - x
    np.testing.assert_allclose(from_mirror(mirrored, widths[:, None] - 1), points, atol=1e-5)


def test_distributed_fit_matches_one_process(tmp_path, ytf68_small):
    """torchrun with 2 gloo processes (batch 2 each) against 1 process (batch 4): the same start, the
    same number of steps, a validation RMSE within tolerance (augmentation draws differ)."""
    common = ["-m", "train", "fit", "--ytf68", str(ytf68_small), "--val-fraction", "0.25", "--epochs", "3",
              "--batch-size", "4", "--ema-decay", "0", "--device", "cpu", "--cache", str(tmp_path / "cache")]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    one = subprocess.run([sys.executable, *common, "--output-dir", str(tmp_path / "one")], capture_output=True, text=True,
                         env=env, cwd=root, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533",
                          *common[1:], "--output-dir", str(tmp_path / "two")], capture_output=True, text=True, env=env,
                         cwd=root, timeout=300)
    assert two.returncode == 0, "\n".join(line for line in two.stderr.splitlines() if "Error" in line)[-3000:]
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("one", "two"))
    assert list(b["epoch"]) == [1, 2, 3]
    assert abs(a["rmse"].iloc[-1] - b["rmse"].iloc[-1]) < 0.15 * a["rmse"].iloc[-1]
    assert two.stdout.count("epoch=3") == 1  # one process reports


def test_labels_are_read_0_based_and_mirror_about_w_minus_1(ytf68_small):
    """ytf68 counts pixels from 1; the faces read carry 0-based pixel centres, which the mirror
    augmentation maps x -> (W - 1) - x with left and right swapped, as the image's pixels go."""
    from torchvision.transforms import v2

    faces = ytf68_faces(ytf68_small)
    table = pd.read_csv(ytf68_small / "keypoints68.csv")
    written = kaggle_from_ibug68(table.iloc[0, 2:].to_numpy(np.float32).reshape(68, 2))
    matrix = framing_transform(written - 1)
    np.testing.assert_allclose(faces.keypoints[0], (written - 1) @ matrix[:, :2].T + matrix[:, 2] + CANVAS_MARGIN, atol=1e-3)
    flip = v2.Compose([MirrorWithSwap(p=1.0), v2.ToDtype(torch.float32, scale=True)])
    image, points, _ = KeypointDataset(faces, flip)[0]
    np.testing.assert_allclose(image.numpy()[0], faces.canvases[0][:, ::-1] / 255, atol=1e-6)
    expected = faces.keypoints[0][list(FLIP_PERMUTATION)].copy()
    expected[:, 0] = (CANVAS - 1) - expected[:, 0]
    np.testing.assert_allclose(points.numpy(), expected, atol=1e-3)


@pytest.mark.parametrize("mirror", [True, False])
def test_calibrate_takes_the_training_faces_offset_out(tmp_path, ytf68_small, mirror):
    """`calibrate` folds the median signed error on training faces into the output offset: afterwards
    the training faces' median error is zero (to float rounding), whatever it was. With --no-mirror it
    measures the answers on each crop alone, and the exported files run one pass a face."""
    run = tmp_path / "run"
    assert main(["fit", "--ytf68", str(ytf68_small), "--val-fraction", "0.25", "--epochs", "1", "--batch-size", "4",
                 "--device", "cpu", "--output-dir", str(run)]) == 0
    out = tmp_path / "calibrated.pth"
    assert main(["calibrate", str(run / "checkpoint.pth"), "--ytf68", str(ytf68_small), "--val-fraction", "0.25",
                 "--output", str(out), *([] if mirror else ["--no-mirror"])]) == 0
    faces = ytf68_faces(ytf68_small, load_offsets(OFFSETS_FILE))  # as calibrate reads them by default
    train_rows, _ = split_by_group(faces.groups, 0.25, 0)
    images, targets = stack_eval(faces.subset(train_rows))
    before = model_from_checkpoint(load_checkpoint(run / "checkpoint.pth"))
    before.mirror = mirror
    after = model_from_checkpoint(load_checkpoint(out))
    assert after.mirror == mirror
    before, after = (predict(m, images, torch.device("cpu")) for m in (before, after))
    assert np.abs(np.median(before - targets, axis=0)).max() > 0.1
    np.testing.assert_allclose(np.median(after - targets, axis=0), 0, atol=1e-3)
    if not mirror:
        assert main(["export", str(out), str(tmp_path / "single.pt")]) == 0
        model = KeypointModel(tmp_path / "single.pt", "cpu")  # the ONNX twin
        assert not model.runtime.mirrors
        crops = (images[:3, 0].numpy() * 255).round().astype(np.uint8)
        np.testing.assert_allclose(model.predict(crops).points, after[:3], atol=1e-3)


def test_pseudolabel_draws_continue_where_an_earlier_draw_stopped():
    images = [Path(f"Person_{i // 3}_{i % 3:04d}.jpg") for i in range(60)]
    first = sample(images, None, 25, seed=3)
    rest = sample(images, None, None, seed=3, skip=25)
    assert len(first) == 25 and not set(first) & set(rest) and set(first) | set(rest) == set(images)
    # With a cap per person the draw is the same people's images, taken in the same order.
    capped = sample(images, 1, None, seed=3)
    assert len(capped) == 20 and set(sample(images, 1, 8, seed=3)) | set(sample(images, 1, None, seed=3, skip=8)) == set(capped)
