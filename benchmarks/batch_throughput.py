"""Throughput of a folder run (`run_tracker.py --video DIR --csv OUT --workers N`) for several N.

    python -m benchmarks.batch_throughput [--workers 1 2] [--rounds 2] [--page BENCHMARKS.md]

The shared videos (links in a temporary folder), each N run `--rounds` times in alternation (1 2 2 1
...: a machine whose load drifts favours neither), outputs written fresh each time. Whole process
timed, startup included. Prints a Markdown section; `--page` puts it into the benchmark page (where
`python -m benchmarks` keeps it).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.model_speed import cpu_name
from tracker.app.config import TrackerSettings
from tracker.app.loop import annotate
from tracker.app.run import build_tracker
from tracker.app.sources import VideoSource

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Folder runs"


def time_run(videos: Path, out: Path, workers: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of all its processes, frames) of one folder run into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "run_tracker.py", "--video", str(videos), "--csv", str(out),
                           "--workers", str(workers)], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers count: the driver waits for them
    if proc.returncode != 0:
        raise SystemExit(f"--workers {workers} failed:\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "report.json").read_text())["summary"]
    return wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, summary["frames"]


def cores_busy(video: Path) -> float:
    """CPU time of all the tracker's threads over its main thread's, on one video: the cores one
    worker keeps busy when its main thread (model, crops, smoothing) never waits."""
    tracker = build_tracker(TrackerSettings(weights=str(ROOT / "weights" / "cascade.pt"), device="cpu"))
    source = VideoSource(video)
    try:
        before, main = resource.getrusage(resource.RUSAGE_SELF), time.thread_time()
        annotate(source, tracker, [])
        after, main = resource.getrusage(resource.RUSAGE_SELF), time.thread_time() - main
    finally:
        source.close()
        tracker.close()
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / main


def frame_size(path: Path) -> tuple[int, int]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    size = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return size


def section_of(page: str, heading: str = HEADING) -> str:
    """The section under `heading` up to the next `## `, or ""."""
    if heading not in page:
        return ""
    body = page[page.index(heading):]
    end = body.find("\n## ", len(heading))
    return body if end < 0 else body[: end + 1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--page", type=Path, help="put the section into this page (e.g. BENCHMARKS.md)")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.videos.iterdir() if p.suffix == ".mp4")
    if not files:
        ap.error(f"{args.videos}: no .mp4 files")
    load = os.getloadavg()[0]
    busy = cores_busy(files[0])
    timings: dict[int, list[tuple[float, float, int]]] = {n: [] for n in args.workers}
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp, "videos")
        videos.mkdir()
        for f in files:
            (videos / f.name).symlink_to(f.resolve())
        for round_ in range(args.rounds):
            for n in args.workers if round_ % 2 == 0 else reversed(args.workers):
                timings[n].append(result := time_run(videos, Path(tmp, "out"), n))
                print(f"--workers {n}: {result[0]:.1f} s, CPU {result[1]:.1f} s", file=sys.stderr)
    frames = timings[args.workers[0]][0][2]
    sizes = sorted(frame_size(f) for f in files)
    rows = []
    for n, runs in timings.items():
        walls, cpus = [wall for wall, _, _ in runs], [cpu for _, cpu, _ in runs]
        wall = statistics.median(walls)
        rows.append(f"| {n} | {' / '.join(f'{w:.1f}' for w in walls)} | {' / '.join(f'{c:.1f}' for c in cpus)} | "
                    f"{60 * len(files) / wall:.1f} | {frames / wall:.0f} |")
    lines = [
        HEADING, "",
        f"`run_tracker.py --video DIR --csv OUT --workers N` on a folder of the {len(files)} shared videos ({frames} "
        f"frames, {sizes[0][0]}x{sizes[0][1]} to {sizes[-1][0]}x{sizes[-1][1]}), whole process timed (startup included), "
        f"each N run {args.rounds} times "
        "in alternation; files per minute and frames per second from the median wall time; CPU: user + system "
        "time of all its processes. "
        f"Measured with `python -m benchmarks.batch_throughput` on {time.strftime('%Y-%m-%d', time.gmtime())}, "
        f"{cpu_name()}, {os.cpu_count()} cores, "
        f"load average {load:.2f} at the start.", "",
        "| workers | wall s (each run) | CPU s (each run) | files / min | frames / s |", "|---|---|---|---|---|", *rows, "",
        f"One worker keeps {busy:.2f} cores busy when its main thread never waits (CPU time of all its threads over "
        f"the main thread's, on {files[0].name}): the video decoder and the detector run on threads of their own. "
        "`--workers` defaults to one per core. On a shared machine wall times move with the load of others, "
        "the CPU times much less.", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.page:
        page = args.page.read_text()
        old = section_of(page)
        args.page.write_text(page.replace(old, text) if old else page.rstrip("\n") + "\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
