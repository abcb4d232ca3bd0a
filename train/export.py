"""Writing the cascade files: the TorchScript `.pt` and its ONNX twin beside it, checked against each
other before either is called written. The contract is `kaggle_framing.weights_contract`."""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kaggle_framing import CROP_SIZE
from kaggle_framing.weights_contract import (
    DISAGREEMENT, EXTRA_FILE, INPUT, KEYPOINTS, PRESENCE, SOURCE_SHA256, WeightsError, answers_on_mirror,
    contract_metadata, file_sha256, load_torchscript, twin_path,
)

TWIN_TOLERANCE = 1e-3  # px: the twin's points may differ from the .pt's by float rounding, no more


class _WithPresence(nn.Module):
    """`forward` = the cascade's `with_presence`: what the ONNX exporter traces (scripted, for the
    legacy exporter, so each wrapper has one fixed return type)."""

    def __init__(self, cascade: nn.Module) -> None:
        super().__init__()
        self.cascade = cascade

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cascade.with_presence(x)


class _Answers(_WithPresence):
    """`forward` = the cascade's `answers`, of a cascade that averages in its mirror image."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return self.cascade.answers(x)


def _outputs(model: nn.Module) -> tuple[list[str], nn.Module]:
    """The twin's output names, and the module whose `forward` gives them."""
    if answers_on_mirror(model):
        return [KEYPOINTS, PRESENCE, DISAGREEMENT], _Answers(model)
    if hasattr(model, "with_presence"):
        return [KEYPOINTS, PRESENCE], _WithPresence(model)
    return [KEYPOINTS], model


def export_cascade(model: nn.Module, path: str | Path) -> None:
    """Script an eval-mode cascade to `path` (.pt, with its `keypoints.json`) and write its ONNX twin."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    tmp = path.with_suffix(".tmp")
    torch.jit.save(torch.jit.script(model), str(tmp), _extra_files={EXTRA_FILE: json.dumps(contract_metadata())})
    tmp.replace(path)
    export_twin(model, path)


def export_twin(model: nn.Module, path: str | Path) -> Path:
    """Write the ONNX twin of the TorchScript file `path`, exported from `model` (the same weights),
    and check that both give the same points before it takes the twin's place.

    `model` is an eager module wherever train/model.py can rebuild one (torch.export, the exporter
    torch recommends, cannot read TorchScript); a TorchScript module otherwise, for the legacy
    exporter: a .pt of an earlier architecture still gets its twin."""
    path, twin = Path(path), twin_path(path)
    model = model.eval().cpu()
    outputs, module = _outputs(model)
    wrapped = module is not model
    x = torch.rand(2, 1, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    tmp = twin.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporters' deprecation and fallback notices
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        if isinstance(model, torch.jit.ScriptModule):
            torch.onnx.export(torch.jit.script(module) if wrapped else module, (x,), str(tmp), dynamo=False,
                              input_names=[INPUT], output_names=outputs, opset_version=18,
                              dynamic_axes={name: {0: "batch"} for name in [INPUT, *outputs]})
        else:
            program = torch.onnx.export(module, (x,), dynamo=True, verbose=False, input_names=[INPUT],
                                        output_names=outputs, dynamic_shapes=({0: torch.export.Dim("batch")},))
            program.save(str(tmp), external_data=False)
    try:
        _stamp(tmp, path)
        check_twin(path, tmp)
    except BaseException:
        tmp.unlink()
        raise
    tmp.replace(twin)
    return twin


def _stamp(onnx_file: Path, source: Path) -> None:
    """Write the contract and the sha256 of the .pt it came from into the ONNX file's metadata."""
    import onnx

    model = onnx.load(str(onnx_file))
    props = {EXTRA_FILE: json.dumps(contract_metadata()), "source": source.name, SOURCE_SHA256: file_sha256(source)}
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=v) for k, v in props.items())
    model.producer_name = "python -m train export"
    onnx.save(model, str(onnx_file))


def check_twin(path: Path, twin: Path) -> None:
    """The twin (`twin`, not yet in place) must give the .pt's points (and presence) on a batch of 1 and of 8 textured crops."""
    import onnxruntime as ort

    scripted = load_torchscript(path)
    session = ort.InferenceSession(str(twin), providers=["CPUExecutionProvider"])
    names, module = _outputs(scripted)
    if [o.name for o in session.get_outputs()] != names:
        raise WeightsError(f"{twin_path(path)}: outputs {[o.name for o in session.get_outputs()]}, expected {names}; not written")
    rng = np.random.default_rng(0)
    for n in (1, 8):
        x = rng.random((n, 1, CROP_SIZE, CROP_SIZE), dtype=np.float32)
        with torch.inference_mode():
            expected = module(torch.from_numpy(x))
            expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(names, {INPUT: x})
        gap = max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected))
        if gap > TWIN_TOLERANCE:
            raise WeightsError(f"{twin_path(path)}: differs from {path} by {gap:.2g} px at batch {n}; not written")
