"""Which runtime runs the cascade: onnxruntime on the CPU (torch never imported), TorchScript on CUDA.

Both answer `runtime(crops) -> (points, presence, disagreement)` for (N, 96, 96) uint8 crops: (N, 15,
2) float32 crop pixels, (N,) face probabilities (None where the weights have no presence output) and
(N,) how far apart the answers on each crop and its mirror image were (None where the weights do not
answer on mirror images). The rest of the tracker does not know which one runs.

`--weights` names either file. Given the TorchScript `.pt`, the CPU runs its ONNX twin beside it when
the twin was exported from that very file (sha256 in its metadata); a twin that is missing, stale or
broken is named in one warning line and the `.pt` runs with torch instead.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from typing import Protocol

import numpy as np

from kaggle_framing.weights_contract import WeightsError, check_is_file, file_sha256, twin_path
from tracker.messages import warn


class Runtime(Protocol):
    device: object  # prints as cpu, cuda:0...
    has_presence: bool
    mirrors: bool  # the points are the mean of the answers on each crop and its mirror image

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]: ...


def cuda_plausible() -> bool:
    """Whether this machine may have a CUDA GPU, told without importing torch (1.5-2 s, 300+ MB):
    torch is installed and an NVIDIA driver shows a GPU. Only then does `--device auto` import torch
    to ask it; a false "maybe" costs that import, never a wrong answer."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1") or importlib.util.find_spec("torch") is None:
        return False
    if sys.platform == "win32":
        return (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvcuda.dll").is_file()
    if sys.platform.startswith("linux"):
        gpus = Path("/proc/driver/nvidia/gpus")
        # /dev/dxg: a GPU shared into WSL2, whose /proc has no nvidia entries.
        return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/nvidia0").exists() or Path("/dev/dxg").exists()
    return False  # macOS: no CUDA builds of torch


def open_runtime(weights: str | Path, device: str = "auto") -> Runtime:
    """The runtime for a weights file on `device` (auto: CUDA when present, else the CPU; any case)."""
    path, device = Path(weights), device.lower()
    if device == "auto":
        device = "cpu"
        if path.suffix != ".onnx" and cuda_plausible():
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return _cpu_runtime(path)
    if path.suffix == ".onnx":
        raise WeightsError(f"{path}: the ONNX twin runs on the CPU only; --device {device} runs the TorchScript .pt")
    try:
        from tracker.torchscript_cascade import TorchScriptCascade
    except ImportError:
        raise WeightsError(f"--device {device} needs torch, which is not installed (--device cpu runs without it)") from None
    return TorchScriptCascade(path, device)


def _cpu_runtime(path: Path) -> Runtime:
    from tracker.onnx_cascade import OnnxCascade  # onnxruntime (~0.3 s) only where the CPU runs the model

    if path.suffix == ".onnx":
        return OnnxCascade(path)
    check_is_file(path)
    if not zipfile.is_zipfile(path):  # said before any word about its twin: TorchScript files are zip archives
        raise WeightsError(f"{path}: not a readable TorchScript file (not a zip archive), nor an .onnx")
    twin = twin_path(path)
    if not twin.is_file():
        problem = f"{twin}: missing"
    else:
        try:
            cascade = OnnxCascade(twin)
        except WeightsError as e:
            problem = str(e)
        else:
            if cascade.source_sha256 == file_sha256(path):
                return cascade
            problem = f"{twin}: stale (exported from another {path.name})"
    try:
        from tracker.torchscript_cascade import TorchScriptCascade
    except ImportError:
        raise WeightsError(f"{problem}, and torch, which could run {path} instead, is not installed "
                           f"(`python -m train export {path}` writes the twin)") from None
    warn(f"{problem}; running {path} with torch instead, slower to start "
         f"(`python -m train export {path}` writes a fresh twin)")
    return TorchScriptCascade(path, "cpu")
