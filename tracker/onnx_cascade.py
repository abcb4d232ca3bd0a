"""The cascade's ONNX twin run by onnxruntime: the CPU runtime, which never imports torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from kaggle_framing import CROP_SIZE
from kaggle_framing.weights_contract import (
    DISAGREEMENT, EXTRA_FILE, INPUT, KEYPOINTS, PRESENCE, SOURCE_SHA256, WeightsError, check_answers, check_is_file, check_metadata, dry_run_crops,
    first_line,
)


def session_options(threads: int = 1) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # One thread, no spinning: a 96x96 crop is too little work to split (batch 1: 0.40 ms with one
    # thread, 0.41 with two), and the video decoder and the detector want the other core.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Full graph optimisation (convolution fusions, NCHWc layouts) halves the batch-1 time.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its warnings are not our users' business
    return options


class OnnxCascade:
    """`cascade(crops)`: (N, 96, 96) uint8 crops -> (points (N, 15, 2), presence (N,) or None,
    disagreement with the mirror image (N,) or None); see kaggle_framing.weights_contract."""

    device = "cpu"

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        path = Path(path)
        check_is_file(path)
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types for bad files
            raise WeightsError(f"{path}: not a readable ONNX file ({first_line(e)})") from None
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        check_metadata(self.metadata.get(EXTRA_FILE, ""), path)
        inputs = self.session.get_inputs()
        outputs = [o.name for o in self.session.get_outputs()]
        if [i.name for i in inputs] != [INPUT] or inputs[0].shape[1:] != [1, CROP_SIZE, CROP_SIZE] or KEYPOINTS not in outputs:
            raise WeightsError(f"{path}: not a cascade twin (input {INPUT} (N, 1, 96, 96), output {KEYPOINTS} expected)")
        self.outputs = [name for name in (KEYPOINTS, PRESENCE, DISAGREEMENT) if name in outputs]
        self.has_presence = PRESENCE in outputs
        self.mirrors = DISAGREEMENT in outputs
        self.source_sha256 = self.metadata.get(SOURCE_SHA256, "")
        try:
            points, presence, _ = self._run(dry_run_crops())
        except Exception as e:
            raise WeightsError(f"{path}: does not run on (N, 1, 96, 96) crops ({first_line(e)})") from None
        check_answers(path, points, presence, len(dry_run_crops()))

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        out = dict(zip(self.outputs, self.session.run(self.outputs, {INPUT: x})))
        return out[KEYPOINTS], out.get(PRESENCE), out.get(DISAGREEMENT)

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        x = crops.reshape(-1, 1, CROP_SIZE, CROP_SIZE).astype(np.float32)
        return self._run(np.divide(x, np.float32(255), out=x))
