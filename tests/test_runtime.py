"""tracker/runtime.py and its two backends: the ONNX twin on the CPU gives the TorchScript file's
points, a twin that cannot be trusted is named (and the .pt runs instead), and a CPU run never
imports torch."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from kaggle_framing.weights_contract import (
    EXTRA_FILE, SOURCE_SHA256, WeightsError, file_sha256, load_torchscript, twin_path,
)
from tests.helpers import ROOT, data, headless_env, labelled_crops, labelled_faces, require
from tracker.keypoint_model import KeypointModel
from tracker.onnx_cascade import OnnxCascade
from tracker.runtime import cuda_plausible, open_runtime
from tracker.torchscript_cascade import TorchScriptCascade
from train.export import export_cascade, export_twin
from train.model import CascadeCNN

WEIGHTS = ROOT / "weights" / "cascade.pt"
SAMPLE = ROOT / "samples" / "talking_face.mp4"
PHOTO = data("photos/obamas.jpg")


def test_shipped_twin_is_fresh():
    """weights/cascade.onnx was exported from this very weights/cascade.pt: after a new .pt,
    `python -m train export weights/cascade.pt` writes its twin again, or this fails."""
    twin = OnnxCascade(require(twin_path(WEIGHTS)))
    assert twin.source_sha256 == file_sha256(WEIGHTS), "stale twin: run python -m train export weights/cascade.pt"
    assert json.loads(twin.metadata[EXTRA_FILE])["framing"]["crop_size"] == 96


@pytest.mark.parametrize("batch", [1, 8])
def test_twin_gives_the_torchscript_points(batch):
    crops = labelled_crops(labelled_faces(8))[:batch]
    onnx = open_runtime(require(WEIGHTS), "cpu")(crops)
    scripted = TorchScriptCascade(WEIGHTS, "cpu")(crops)
    assert onnx[0].shape == (batch, 15, 2)
    for a, b in zip(onnx, scripted):  # points, presence, disagreement with the mirror image
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)


def test_mirror_answers_of_both_runtimes(monkeypatch):
    crops = labelled_crops(labelled_faces(3))
    onnx = KeypointModel(require(WEIGHTS), "cpu")
    assert isinstance(onnx.runtime, OnnxCascade)
    monkeypatch.setattr("tracker.runtime.twin_path", lambda path: path.with_suffix(".none"))
    scripted = KeypointModel(WEIGHTS, "cpu")  # no twin found: the .pt itself, with torch
    assert isinstance(scripted.runtime, TorchScriptCascade)
    answers = onnx.predict(crops, mirror=True)
    for a, b in ((answers.points, scripted.predict(crops, mirror=True).points),
                 (answers.disagreement, scripted.predict(crops, mirror=True).disagreement)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)
    assert onnx.has_presence and scripted.has_presence  # the shipped weights say whether a face is there
    assert answers.presence.shape == (3,) and (answers.presence > 0.9).all()  # these are faces
    assert (answers.disagreement < 1.5).all()  # on real faces the crop and its mirror image agree


def test_weights_that_mirror_inside_answer_as_the_tracker_mirrors_others(tmp_path):
    """Weights that average each crop's answer with its mirror image's inside the graph, and the same
    weights without that, mirrored by KeypointModel: the same disagreement and presence; the one-pass
    weights' points stay their answer on the crop alone (the one tracked frames get)."""
    torch.manual_seed(0)
    inside = CascadeCNN(width1=8, width2=4)
    for p in inside.parameters():
        nn.init.normal_(p, std=0.05)
    outside = CascadeCNN(width1=8, width2=4, mirror=False)
    outside.load_state_dict(inside.state_dict())
    crops = labelled_crops(labelled_faces(4))
    answers = []
    for name, model in (("inside", inside), ("outside", outside)):
        export_cascade(model, tmp_path / f"{name}.pt")
        keypoints = KeypointModel(tmp_path / f"{name}.pt", "cpu")
        assert keypoints.runtime.mirrors == (name == "inside")
        answers.append(keypoints.predict(crops, mirror=True))
    np.testing.assert_allclose(answers[1].points, keypoints.predict(crops).points, rtol=0, atol=1e-5)
    assert np.abs(answers[0].points - answers[1].points).max() > 0.01  # (the mean is not the crop's answer)
    np.testing.assert_allclose(answers[0].disagreement, answers[1].disagreement, rtol=0, atol=1e-3)
    np.testing.assert_allclose(answers[0].presence, answers[1].presence, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mirror", [False, True])
def test_legacy_exporter_writes_the_twin_of_a_torchscript_file(tmp_path, mirror):
    """`export_twin` given the TorchScript module itself (what `python -m train export OLD.pt` does for
    an architecture train/model.py cannot rebuild) scripts a wrapper with the right outputs."""
    pt = tmp_path / "cascade.pt"
    export_cascade(CascadeCNN(width1=8, width2=4, mirror=mirror), pt)
    twin_path(pt).unlink()
    export_twin(torch.jit.load(str(pt)), pt)
    outputs = [o.name for o in ort.InferenceSession(str(twin_path(pt))).get_outputs()]
    assert outputs == (["keypoints", "presence", "disagreement"] if mirror else ["keypoints", "presence"])


def nudged_copy(folder):
    """A copy of the shipped .pt with one weight changed, and the shipped twin beside it (stale)."""
    model = torch.jit.load(str(require(WEIGHTS)))
    with torch.no_grad():
        model.level2.head_bias.add_(0.5)
    pt = folder / "cascade.pt"
    torch.jit.save(model, str(pt))
    shutil.copy(twin_path(WEIGHTS), twin_path(pt))
    return pt


@pytest.mark.parametrize("twin", ["missing", "stale", "garbage", "no keypoints output"])
def test_untrusted_twin_is_named_and_the_pt_runs(tmp_path, capsys, twin):
    pt = nudged_copy(tmp_path)
    if twin == "missing":
        twin_path(pt).unlink()
    elif twin == "garbage":
        twin_path(pt).write_bytes(b"not onnx" * 100)
    elif twin == "no keypoints output":
        import onnx

        graph = onnx.load(str(twin_path(pt)))
        graph.graph.output[0].name = "points"
        (node,) = [n for n in graph.graph.node if "keypoints" in n.output]
        node.output[list(node.output).index("keypoints")] = "points"
        onnx.save(graph, str(twin_path(pt)))
    runtime = open_runtime(pt, "cpu")
    assert isinstance(runtime, TorchScriptCascade)
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"warning: {twin_path(pt)}") and len(warning.splitlines()) == 1, warning
    assert {"missing": "missing", "stale": "stale", "garbage": "not a readable ONNX file",
            "no keypoints output": "not a cascade twin"}[twin] in warning
    assert f"python -m train export {pt}" in warning


def test_missing_twin_without_torch_is_one_error(tmp_path, monkeypatch):
    pt = tmp_path / "cascade.pt"
    shutil.copy(require(WEIGHTS), pt)
    monkeypatch.setitem(sys.modules, "tracker.torchscript_cascade", None)  # import fails, as without torch
    with pytest.raises(WeightsError, match="missing, and torch, which could run .* is not installed"):
        open_runtime(pt, "cpu")


def test_cuda_without_torch_is_one_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tracker.torchscript_cascade", None)  # import fails, as without torch
    with pytest.raises(WeightsError, match="--device cuda needs torch"):
        open_runtime(require(WEIGHTS), "cuda")


def test_onnx_weights_run_on_the_cpu_only():
    assert isinstance(open_runtime(require(twin_path(WEIGHTS)), "auto"), OnnxCascade)
    with pytest.raises(WeightsError, match="runs on the CPU only"):
        open_runtime(twin_path(WEIGHTS), "cuda")


class PresenceCascade(CascadeCNN):
    """The model contract's optional second answer: the probability that the crop holds a face."""

    def __init__(self) -> None:
        super().__init__(width1=8, width2=4, mirror=False)
        self.presence = nn.Linear(1, 1)

    @torch.jit.export
    def with_presence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = self.presence(x.mean(dim=(1, 2, 3)).unsqueeze(1)).squeeze(1)
        return self.forward(x), torch.sigmoid(score)


def test_export_writes_both_files_and_presence(tmp_path):
    torch.manual_seed(0)
    model = PresenceCascade()
    with torch.no_grad():
        model.presence.weight.fill_(8.0)
        model.presence.bias.fill_(-4.0)
    pt = tmp_path / "cascade.pt"
    export_cascade(model, pt)
    assert {o.name for o in ort.InferenceSession(str(twin_path(pt))).get_outputs()} == {"keypoints", "presence"}
    assert OnnxCascade(twin_path(pt)).source_sha256 == file_sha256(pt)
    noise = np.random.default_rng(0).integers(0, 64, (8, 96, 96))
    crops = (np.linspace(0, 192, 8)[:, None, None] + noise).astype(np.uint8)  # dark to bright
    onnx = KeypointModel(pt, "cpu")
    assert isinstance(onnx.runtime, OnnxCascade) and onnx.has_presence
    scripted = TorchScriptCascade(pt, "cpu")
    assert scripted.has_presence
    points, presence, disagreement = scripted(crops)
    assert disagreement is None  # it does not answer on mirror images
    answers = onnx.predict(crops)
    np.testing.assert_allclose(answers.points, points, rtol=0, atol=1e-3)
    np.testing.assert_allclose(answers.presence, presence, rtol=0, atol=1e-5)
    assert presence.min() < 0.3 and presence.max() > 0.7  # it answers per crop, not a constant
    load_torchscript(pt)  # the .pt stays a valid cascade


NO_TORCH = textwrap.dedent(
    """
    import sys
    import run_tracker
    status = run_tracker.main(sys.argv[1:])
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print("torch modules:", loaded[:3])
    sys.exit(status or (3 if loaded else 0))
    """
)


@pytest.mark.parametrize("source", ["image", "sample clip"])
def test_a_cpu_run_never_imports_torch(tmp_path, source):
    """The whole CLI on the CPU, `--device auto` where this machine shows no NVIDIA GPU: torch is
    never loaded, and the CSV is written."""
    if source == "image":
        args = ["--image", str(require(PHOTO)), "--device", "cpu" if cuda_plausible() else "auto"]
    else:
        args = ["--video", str(require(SAMPLE)), "--device", "cpu"]
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, *args, "--csv", str(out), "--no-display"],
                          cwd=ROOT, env=headless_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "torch modules: []" in proc.stdout
    assert "warning" not in proc.stderr, proc.stderr
    assert len(out.read_text().splitlines()) > 1


def test_hidden_gpus_are_not_looked_for(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # as torch reads it: no GPU for this process
    assert not cuda_plausible()
