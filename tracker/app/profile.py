"""`--profile`: where a run's time went, per stage and per frame, said once at the end."""
from __future__ import annotations

import sys
import time
from collections import defaultdict

import numpy as np

STAGES = ("decode", "detect", "crop", "model", "smooth", "draw", "write")


class Profile:
    """Seconds per stage (summed), and each frame's latency: frame in hand -> faces out (drawn, where shown)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = defaultdict(float)
        self.latencies: list[float] = []
        self.main_cpu = time.thread_time()

    def report(self, frames: int, tracker_timings: dict[str, float], images: bool, shown: bool) -> None:
        timings = {**self.timings, **tracker_timings}
        main_cpu = time.thread_time() - self.main_cpu
        print("mean ms per frame: " + ", ".join(f"{s} {1000 * timings.get(s, 0.0) / frames:.2f}" for s in STAGES),
              file=sys.stderr)
        if not images:
            print("(decoding a video file, face detection while faces are tracked, and drawing and writing the "
                  "outputs run on other threads)", file=sys.stderr)
        print(f"main thread CPU: {1000 * main_cpu / frames:.2f} ms per frame", file=sys.stderr)
        ms = 1000 * np.array(self.latencies)
        upto = "drawn" if shown else "faces out"
        print(f"latency, frame in hand -> {upto}: mean {ms.mean():.2f} ms, 95th percentile {np.percentile(ms, 95):.2f} ms, "
              f"max {ms.max():.2f} ms", file=sys.stderr)
