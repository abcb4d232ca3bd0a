"""CPU milliseconds per face of the cascade in both runtimes, each loaded as the tracker loads it.

    python -m benchmarks.model_speed [weights/cascade.pt] [--runs 2000]

onnxruntime on the `.onnx` twin (what the tracker runs on the CPU) and the frozen TorchScript `.pt`
(what it runs on CUDA, and on the CPU where the twin is missing or stale), with 1 and 2 threads, at
batch 1 and 4, uint8 crops in and points out. The configurations take turns in rounds, so that the
machine's drift spreads over all of them; it prints the median and 90th percentile per face.
"""
from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np

from kaggle_framing import CROP_SIZE
from kaggle_framing.weights_contract import twin_path
from tracker.onnx_cascade import OnnxCascade

ROUNDS = 10


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_calls(fn: Callable, crops: np.ndarray, runs: int) -> np.ndarray:
    """Seconds of each of `runs` calls."""
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn(crops)
        times[i] = time.perf_counter() - t
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="?", default="weights/cascade.pt", help="the .pt; its .onnx twin is beside it")
    ap.add_argument("--runs", type=int, default=2000, help="calls per configuration (default 2000)")
    args = ap.parse_args()
    import onnxruntime
    import torch

    from tracker.torchscript_cascade import TorchScriptCascade  # torch: after the arguments are good

    scripted = TorchScriptCascade(args.weights, "cpu")  # frozen, as the tracker runs it
    onnx = {n: OnnxCascade(twin_path(args.weights), threads=n) for n in (1, 2)}

    def torch_threads(n: int) -> Callable:
        def run(crops: np.ndarray) -> None:
            if torch.get_num_threads() != n:
                torch.set_num_threads(n)
            scripted(crops)
        return run

    runners = {("onnxruntime", n): onnx[n] for n in (1, 2)} | {("TorchScript", n): torch_threads(n) for n in (1, 2)}
    rng = np.random.default_rng(0)
    batches = {b: rng.integers(0, 256, (b, CROP_SIZE, CROP_SIZE), dtype=np.uint8) for b in (1, 4)}
    times: dict[tuple, list[np.ndarray]] = {}
    for key, fn in runners.items():
        for b, crops in batches.items():
            time_calls(fn, crops, 50)  # warm up
    for _ in range(ROUNDS):
        for key, fn in runners.items():
            for b, crops in batches.items():
                times.setdefault((*key, b), []).append(time_calls(fn, crops, max(1, args.runs // ROUNDS)))
    print(f"machine: {cpu_name()}; onnxruntime {onnxruntime.__version__}, torch {torch.__version__}")
    print("runtime      threads  batch  median ms/face  p90 ms/face")
    for (runtime, threads, b), parts in times.items():
        per_face = np.concatenate(parts) * 1000 / b
        print(f"{runtime:12s} {threads:7d} {b:6d} {np.median(per_face):15.3f} {np.percentile(per_face, 90):12.3f}")


if __name__ == "__main__":
    main()
