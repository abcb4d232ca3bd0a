"""`python -m train` end to end on tiny data (in-process through train.__main__.main, for speed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from kaggle_framing import COLUMNS, CROP_SIZE, KEYPOINT_NAMES
from kaggle_framing.weights_contract import file_sha256, twin_path
from tracker.onnx_cascade import OnnxCascade
from train import engine
from train.__main__ import main, parser
from train.engine import load_checkpoint, model_from_checkpoint

from tests.helpers import ROOT, error_line
from train.model import CascadeCNN
from train.commands import COMMANDS

OUTPUTS = ("checkpoint.pth", "metrics.csv", "curves.png")


def check_run(output_dir, epochs: int) -> pd.DataFrame:
    for name in OUTPUTS:
        assert (output_dir / name).is_file(), name
    assert cv2.imread(str(output_dir / "curves.png")) is not None
    metrics = pd.read_csv(output_dir / "metrics.csv")
    assert metrics["epoch"].tolist() == list(range(1, epochs + 1))
    assert np.isfinite(metrics[["train_loss", "rmse", "l1_rmse"]].to_numpy()).all()
    checkpoint = load_checkpoint(output_dir / "checkpoint.pth")
    assert checkpoint["epoch"] == epochs - 1
    return metrics


def test_fit_on_kaggle_csv(kaggle_run):
    assert kaggle_run.rc == 0
    assert "14 training faces, 2 validation faces" in kaggle_run.stdout
    check_run(kaggle_run.output_dir, epochs=1)


def test_masked_loss_trains_through_label_gaps(kaggle_run):
    # Most fixture rows have gaps (4-keypoint rows and others); NaN targets must not reach the loss.
    labels = kaggle_run.data.labels
    assert np.isnan(labels).any(axis=1).sum() > len(labels) / 3
    metrics = pd.read_csv(kaggle_run.output_dir / "metrics.csv")
    assert np.isfinite(metrics["train_loss"]).all() and (metrics["train_loss"] > 0).all()
    model = model_from_checkpoint(load_checkpoint(kaggle_run.checkpoint))
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def test_fit_on_ytf68_folder(ytf68_small, tmp_path, fit_args, capsys):
    out = tmp_path / "run"
    assert main(fit_args(ytf68_small, out, 1, "--ytf68")) == 0
    assert "9 training faces, 3 validation faces (1 held-out groups)" in capsys.readouterr().out
    check_run(out, epochs=1)


def state_dicts_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_resume_replays_an_interrupted_run(kaggle_training, tmp_path, fit_args, monkeypatch):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(fit_args(kaggle_training.path, straight, 2)) == 0

    # The same 2-epoch run, interrupted (Ctrl-C) once its first epoch is saved ...
    plot = engine.plot_metrics

    def plot_then_interrupt(*args, **kwargs):
        plot(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "plot_metrics", plot_then_interrupt)
    assert main(fit_args(kaggle_training.path, resumed, 2)) == 130
    assert load_checkpoint(resumed / "checkpoint.pth")["epoch"] == 0
    monkeypatch.setattr(engine, "plot_metrics", plot)

    # ... then resumed: ends exactly where the uninterrupted run ended.
    assert main(fit_args(kaggle_training.path, resumed, 2, "--kaggle", "--resume", str(resumed / "checkpoint.pth"))) == 0
    a, b = load_checkpoint(straight / "checkpoint.pth"), load_checkpoint(resumed / "checkpoint.pth")
    assert a["epoch"] == b["epoch"] == 1
    state_dicts_equal(a["model"], b["model"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        state_dicts_equal(sa, sb)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    ma, mb = check_run(straight, 2), check_run(resumed, 2)
    columns = ["epoch", "train_loss", "lr", "rmse", "nme", "l1_rmse", "l1_nme"]
    pd.testing.assert_frame_equal(ma[columns], mb[columns], rtol=1e-6)


def test_resume_with_more_epochs_extends_the_run(kaggle_run, tmp_path, fit_args):
    """A finished 1-epoch run resumed with --epochs 3: epochs 2 and 3 run on a one-cycle schedule laid
    over 3 epochs, from where such a run is after epoch 1, down to its floor."""
    out = tmp_path / "more"
    assert main(fit_args(kaggle_run.data.path, out, 3, "--kaggle", "--resume", str(kaggle_run.checkpoint))) == 0
    checkpoint = load_checkpoint(out / "checkpoint.pth")
    assert checkpoint["epoch"] == 2
    first = load_checkpoint(kaggle_run.checkpoint)["scheduler"]
    schedule = checkpoint["scheduler"]
    assert schedule["total_steps"] == 3 * first["total_steps"]
    assert schedule["last_epoch"] == schedule["total_steps"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["epoch"].tolist() == [2, 3]
    fresh = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)]), max_lr=3e-3, total_steps=schedule["total_steps"], pct_start=0.05)
    for _ in range(schedule["total_steps"] * 2 // 3):
        fresh.optimizer.step()
        fresh.step()
    assert metrics["lr"].iloc[0] == pytest.approx(fresh.get_last_lr()[0], rel=1e-6), "not the 3-epoch curve's epoch 2"


@pytest.mark.parametrize("epochs, batch_size, expected", [(2, "2", "same --batch-size and data"), (1, "4", "already run 1 epochs")])
def test_resume_that_cannot_extend_is_a_clean_error(kaggle_run, tmp_path, fit_args, capsys, epochs, batch_size, expected):
    argv = fit_args(kaggle_run.data.path, tmp_path / "more", epochs, "--kaggle", "--resume", str(kaggle_run.checkpoint))
    argv[argv.index("--batch-size") + 1] = batch_size
    assert main(argv) == 1
    assert expected in error_line(capsys.readouterr().err)


def test_resume_from_a_corrupt_checkpoint(kaggle_training, tmp_path, fit_args, capsys):
    bad = tmp_path / "checkpoint.pth"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint" * 20)
    assert main(fit_args(kaggle_training.path, tmp_path / "run", 1, "--kaggle", "--resume", str(bad))) == 1
    message = error_line(capsys.readouterr().err)
    assert str(bad) in message and "not a readable checkpoint" in message
    assert not (tmp_path / "run" / "checkpoint.pth").exists()


def test_resume_from_a_truncated_checkpoint(kaggle_run, tmp_path, fit_args, capsys):
    data = kaggle_run.checkpoint.read_bytes()
    bad = tmp_path / "checkpoint.pth"
    bad.write_bytes(data[: len(data) // 2])
    assert main(fit_args(kaggle_run.data.path, tmp_path / "run", 1, "--kaggle", "--resume", str(bad))) == 1
    assert "not a readable checkpoint" in error_line(capsys.readouterr().err)


def test_resume_from_a_torchscript_file(kaggle_run, tmp_path, fit_args, capsys):
    pt = tmp_path / "cascade.pt"
    assert main(["export", str(kaggle_run.checkpoint), str(pt)]) == 0
    capsys.readouterr()
    assert main(fit_args(kaggle_run.data.path, tmp_path / "run", 1, "--kaggle", "--resume", str(pt))) == 1
    assert "not a training checkpoint" in error_line(capsys.readouterr().err)


@pytest.mark.parametrize("cut", ["labels", "image"])
def test_truncated_kaggle_row(kaggle_training, tmp_path, fit_args, capsys, cut):
    # A download cut short in the last row (line 17: header + 16 rows).
    text = kaggle_training.path.read_text()
    lines = text.splitlines(keepends=True)
    assert len(lines) == 17
    last = lines[-1]
    keep = last.index(",", 10) if cut == "labels" else len(last) - 2000
    kaggle_training.path.write_text("".join(lines[:-1]) + last[:keep])
    assert main(fit_args(kaggle_training.path, tmp_path / "run", 1)) == 1
    message = error_line(capsys.readouterr().err)
    assert f"{kaggle_training.path}:17:" in message
    assert ("fields, expected 31" if cut == "labels" else "pixels, expected 9216") in message


def test_missing_data_is_a_clean_error(tmp_path, capsys):
    assert main(["fit", "--kaggle", str(tmp_path / "nope.csv"), "--output-dir", str(tmp_path / "run")]) == 1
    assert "nope.csv" in error_line(capsys.readouterr().err)
    assert main(["fit", "--output-dir", str(tmp_path / "run")]) == 1
    assert "no data" in error_line(capsys.readouterr().err)


SUBPROCESS_LOAD = textwrap.dedent(
    """
    import json, sys
    import torch
    try:
        import kaggle_framing  # the project must not be needed (nor reachable) here
    except ImportError:
        pass
    else:
        raise SystemExit("the project is importable in the subprocess")
    extra = {"keypoints.json": ""}
    model = torch.jit.load(sys.argv[1], _extra_files=extra)
    model.eval()
    with torch.no_grad():
        torch.save(model(torch.load(sys.argv[2])), sys.argv[3])
    meta = extra["keypoints.json"]
    print(meta.decode() if isinstance(meta, bytes) else meta)
    """
)


def test_export_writes_a_standalone_torchscript_file(kaggle_run, tmp_path, capsys):
    pt = tmp_path / "weights" / "cascade.pt"
    assert main(["export", str(kaggle_run.checkpoint), str(pt)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {pt}" in out and f"wrote {twin_path(pt)}" in out
    twin = OnnxCascade(twin_path(pt))
    assert twin.source_sha256 == file_sha256(pt)  # the twin knows its .pt
    assert twin.has_presence  # the cascade's with_presence became the twin's `presence` output
    x = torch.rand(5, 1, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_LOAD, str(pt), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    meta = json.loads(done.stdout.strip().splitlines()[-1])
    assert meta["keypoints"] == list(KEYPOINT_NAMES)
    assert meta["output"] == [None, 15, 2]

    scripted_out = torch.load(tmp_path / "y.pt")
    eager = model_from_checkpoint(load_checkpoint(kaggle_run.checkpoint))
    with torch.no_grad():
        eager_out = eager(x)
    assert scripted_out.shape == (5, 15, 2) and scripted_out.dtype == torch.float32
    torch.testing.assert_close(scripted_out, eager_out, rtol=0, atol=1e-5)


def test_export_of_a_torchscript_file_writes_its_twin(kaggle_run, tmp_path, capsys):
    pt = tmp_path / "cascade.pt"
    assert main(["export", str(kaggle_run.checkpoint), str(pt)]) == 0
    twin_path(pt).unlink()
    before = pt.read_bytes()
    assert main(["export", str(pt)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {twin_path(pt)}"
    assert pt.read_bytes() == before  # the .pt itself is left alone
    crops = np.random.default_rng(0).integers(0, 256, (4, CROP_SIZE, CROP_SIZE), dtype=np.uint8)
    x = torch.from_numpy(crops).float().div(255)[:, None]
    with torch.no_grad():
        expected = torch.jit.load(str(pt))(x).numpy()
    np.testing.assert_allclose(OnnxCascade(twin_path(pt))(crops)[0], expected, rtol=0, atol=1e-3)


def test_export_of_a_non_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.pth"
    bad.write_text("hello")
    assert main(["export", str(bad), str(tmp_path / "out.pt")]) == 1
    assert "not a readable checkpoint" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("weights", ["checkpoint", "torchscript"])
def test_submit(kaggle_run, kaggle_test, tmp_path, capsys, weights):
    path = kaggle_run.checkpoint
    if weights == "torchscript":
        path = tmp_path / "cascade.pt"
        assert main(["export", str(kaggle_run.checkpoint), str(path)]) == 0
    out = tmp_path / "submission.csv"
    argv = ["submit", str(path), "--test", str(kaggle_test.test_csv), "--lookup", str(kaggle_test.lookup_csv),
            "--output", str(out), "--device", "cpu"]
    assert main(argv) == 0
    assert f"({len(kaggle_test.lookup)} rows)" in capsys.readouterr().out
    assert out.read_text().splitlines()[0] == "RowId,Location"
    submission = pd.read_csv(out)
    assert submission["RowId"].tolist() == kaggle_test.lookup["RowId"].tolist()
    assert submission["Location"].between(0, CROP_SIZE).all()

    # Each row holds the model's value for that image and feature.
    model = model_from_checkpoint(load_checkpoint(kaggle_run.checkpoint))
    with torch.no_grad():
        pred = model(torch.from_numpy(kaggle_test.images).float().div(255)[:, None]).numpy().reshape(3, 30)
    expected = [
        np.clip(pred[image_id - 1, COLUMNS.index(feature)], 0, CROP_SIZE)
        for image_id, feature in zip(kaggle_test.lookup["ImageId"], kaggle_test.lookup["FeatureName"])
    ]
    np.testing.assert_allclose(submission["Location"], expected, atol=1e-3)


def test_submit_with_an_unknown_image(kaggle_run, kaggle_test, tmp_path, capsys):
    lookup = kaggle_test.lookup.copy()
    lookup.loc[len(lookup)] = [len(lookup) + 1, 99, "nose_tip_x", np.nan]
    lookup.to_csv(kaggle_test.lookup_csv, index=False)
    argv = ["submit", str(kaggle_run.checkpoint), "--test", str(kaggle_test.test_csv), "--lookup",
            str(kaggle_test.lookup_csv), "--output", str(tmp_path / "s.csv"), "--device", "cpu"]
    assert main(argv) == 1
    assert "image 99" in error_line(capsys.readouterr().err)


def test_evaluate_prints_rmse(kaggle_run, capsys):
    argv = ["evaluate", str(kaggle_run.checkpoint), "--kaggle", str(kaggle_run.data.path), "--device", "cpu", "--jitter"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 faces of 2 held-out groups" in out
    assert "exact framing: RMSE " in out and "jittered framing" in out
    rmse = float(out.split("exact framing: RMSE ")[1].split()[0])
    assert np.isfinite(rmse) and rmse > 0
    assert all(name in out for name in KEYPOINT_NAMES)


def test_a_short_run_moves_its_moving_average(kaggle_training, tmp_path, fit_args):
    """3 epochs of 3 steps: the evaluated and exported average must follow the training, not stay at
    the untrained weights (with a fixed 0.998 decay it moved ~2% of the way: RMSE 3.281 three times)."""
    out = tmp_path / "run"
    assert main(fit_args(kaggle_training.path, out, 3)) == 0
    rmse = pd.read_csv(out / "metrics.csv")["rmse"]
    assert rmse.max() - rmse.min() > 0.02, rmse.tolist()
    checkpoint = load_checkpoint(out / "checkpoint.pth")
    torch.manual_seed(0)  # fit's --seed: the weights the run started from
    start = CascadeCNN(**checkpoint["model_args"]).state_dict()
    trained, averaged = checkpoint["train_model"], checkpoint["model"]
    weights = [k for k, v in start.items() if v.is_floating_point() and "running" not in k]

    def distance(a: dict, b: dict) -> float:
        return float(sum(((a[k] - b[k]) ** 2).sum() for k in weights)) ** 0.5

    assert distance(averaged, trained) < 0.5 * distance(averaged, start)


def test_ema_decay_is_explained_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "moving average of the weights" in text and "(1+t)/(10+t)" in text


def test_submit_with_an_image_id_that_is_not_a_number(kaggle_run, kaggle_test, tmp_path, capsys):
    table = pd.read_csv(kaggle_test.test_csv)
    table["ImageId"] = table["ImageId"].astype(str)
    table.loc[1, "ImageId"] = "2b"
    table.to_csv(kaggle_test.test_csv, index=False)
    argv = ["submit", str(kaggle_run.checkpoint), "--test", str(kaggle_test.test_csv), "--lookup",
            str(kaggle_test.lookup_csv), "--output", str(tmp_path / "s.csv"), "--device", "CPU"]
    assert main(argv) == 1
    assert f"{kaggle_test.test_csv}:3: ImageId '2b' is not a whole number" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "s.csv").exists()


def test_evaluate_scores_a_whole_file_with_val_fraction_1(kaggle_run, capsys):
    argv = ["evaluate", str(kaggle_run.checkpoint), "--kaggle", str(kaggle_run.data.path), "--device", "CPU",
            "--val-fraction", "1"]
    assert main(argv) == 0
    assert f"{len(kaggle_run.data.labels)} faces of {len(kaggle_run.data.labels)} held-out groups" in capsys.readouterr().out


def test_init_takes_the_architecture_from_the_weights(kaggle_training, tmp_path, fit_args, capsys):
    """A fine-tune of a --width1 12 --width2 8 --no-mirror run needs none of those flags again; sizes
    that differ from the weights' are one error line naming both shapes."""
    first, tuned = tmp_path / "first", tmp_path / "tuned"
    assert main(fit_args(kaggle_training.path, first, 1, "--kaggle", "--width1", "12", "--width2", "8", "--no-mirror")) == 0
    assert main(fit_args(kaggle_training.path, tuned, 1, "--kaggle", "--init", str(first / "checkpoint.pth"))) == 0
    held = load_checkpoint(tuned / "checkpoint.pth")["model_args"]
    assert (held["width1"], held["width2"], held["mirror"]) == (12, 8, False)
    capsys.readouterr()
    assert main(fit_args(kaggle_training.path, tmp_path / "clash", 1, "--kaggle", "--init", str(first / "checkpoint.pth"),
                         "--width1", "40")) == 1
    line = error_line(capsys.readouterr().err)
    assert "width1 12, width2 8" in line and "width1 40, width2 8" in line


def test_help_is_fast_and_names_every_command():
    """`python -m train --help` loads no torch, and every command it lists runs (COMMANDS)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "train", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert not any(line.split("|")[-1].strip() == "torch" for line in proc.stderr.splitlines()), "torch imported"
    listed = parser()._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps its subparsers here
    assert set(listed) == set(COMMANDS) and "calibrate" in listed and "calibrate-box" in listed
    assert all(name in proc.stdout for name in COMMANDS)


def test_readme_fine_tune_of_the_shipped_weights_on_the_fixtures(tmp_path):
    """The README's fine-tune (fit from weights/cascade.pt, calibrate, export) on the committed
    fixture faces: a new one-pass file that the tracker runs, in well under the minutes the README
    promises, and the shipped weights left as they were."""
    fixtures, shipped = ROOT / "tests" / "fixtures" / "ytf68", ROOT / "weights" / "cascade.pt"
    before = shipped.read_bytes()
    run = tmp_path / "finetune"
    assert main(["fit", "--ytf68", str(fixtures), "--init", str(shipped), "--epochs", "1", "--lr", "3e-4",
                 "--output-dir", str(run)]) == 0
    assert main(["calibrate", str(run / "checkpoint.pth"), "--ytf68", str(fixtures), "--output", str(run / "cal.pth")]) == 0
    assert main(["export", str(run / "cal.pth"), str(run / "cascade.pt")]) == 0
    assert shipped.read_bytes() == before
    model = torch.jit.load(str(run / "cascade.pt"))
    assert not model.mirror and float(model.offset.abs().max()) > 0  # one pass, as the shipped weights; calibrated
    from tracker import Tracker

    image = cv2.imread(str(ROOT / "tests" / "fixtures" / "photos" / "obamas.jpg"))
    assert len(Tracker(str(run / "cascade.pt"), "cpu").process_image(image)) == 2
