"""CPU milliseconds per face of the cascade file: batch 1, 2 threads, as the model card reports.

    python -m benchmarks.model_speed [weights/cascade.pt] [--threads 2] [--runs 2000]

Loads the file the way the tracker does (frozen TorchScript), warms up, then times `runs` single-crop
calls, level 1 alone and the whole cascade, and prints the median and 90th percentile with the machine.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from tracker.keypoint_model import KeypointModel


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_calls(fn, x: torch.Tensor, runs: int) -> np.ndarray:
    with torch.inference_mode():
        for _ in range(100):
            fn(x)
        times = np.empty(runs)
        for i in range(runs):
            t = time.perf_counter()
            fn(x)
            times[i] = time.perf_counter() - t
    return times * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="?", default="weights/cascade.pt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=2000)
    args = ap.parse_args()
    model = KeypointModel(args.weights, "cpu").model  # loaded as the tracker loads it (frozen)
    torch.set_num_threads(args.threads)  # after: the tracker's loader picks its own thread count
    x = torch.rand(1, 1, 96, 96)
    whole = time_calls(model, x, args.runs)
    print(f"machine: {cpu_name()}, {args.threads} threads, torch {torch.__version__}")
    print(f"cascade, batch 1: median {np.median(whole):.3f} ms, p90 {np.percentile(whole, 90):.3f} ms per face")
    raw = torch.jit.load(args.weights, map_location="cpu").eval()
    if hasattr(raw, "coarse"):
        level1 = time_calls(raw.coarse, x, args.runs)
        print(f"level 1 alone (not frozen), batch 1: median {np.median(level1):.3f} ms")


if __name__ == "__main__":
    main()
