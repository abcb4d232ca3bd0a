"""Our tracker beside dlib, MediaPipe and a floor: accuracy (also by head tilt and turn), speed, stability and
events, in one run.

    python -m benchmarks [--quick] [--setup-peers] [--helen DIR] [--output BENCHMARKS.md]

Writes the page and its plots (next to it, in `benchmark_plots/`), measured on this machine. Every
system runs as a subprocess writing the CSV of `run_tracker.py --csv`, and one reader scores them all.
Peers run from their own venvs in `.venvs/` (`--setup-peers` creates them); a peer that is not
installed is named on the page instead. `--helen DIR`: also score HELEN's public test set (the
`helen/testset` folder of a clone of https://github.com/Spinkoo/Face-alignement). `--quick`: a few
frames and images (the tests run it).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

from benchmarks import sections
from benchmarks.accuracy import pts_images, ytf68_images
from benchmarks.peers import PEERS, VENVS, setup
from benchmarks.report import HELEN_SOURCE, write_page
from benchmarks.systems import ROOT, Results, System, floor, mediapipe, ours, peer
from kaggle_framing.keypoints68 import DataError


def systems(cuda: bool, venvs: Path) -> list[System]:
    """Ours on the CPU (and CUDA where available; and with the optional YuNet detector), the peers, the floor."""
    return [ours("cpu"), *([ours("cuda")] if cuda else []), ours("cpu", detector="yunet"), peer("dlib", venvs), mediapipe("learned", venvs),
            mediapipe("vertices", venvs), floor()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few frames and images (a smoke test, not numbers to quote)")
    ap.add_argument("--setup-peers", action="store_true", help="create the peers' venvs in .venvs/ first (pip)")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md", help="the page (default BENCHMARKS.md)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--work-dir", type=Path, help="clips and CSVs (default: a folder in the system's temp dir)")
    ap.add_argument("--venvs", type=Path, default=VENVS, help="the peers' venvs (default .venvs)")
    ap.add_argument("--helen", type=Path, metavar="DIR", help=f"score HELEN's test set too: the helen/testset folder of {HELEN_SOURCE}")
    args = ap.parse_args(argv)
    for path in (args.data / "ytf68" / "keypoints68.csv", args.data / "videos" / sections.SPEED_SOURCE):
        if not path.exists():
            ap.error(f"{path}: not found (--data names the shared data folder)")
    if not args.output.parent.is_dir():
        ap.error(f"{args.output}: folder {args.output.parent} does not exist")
    helen = None
    if args.helen:
        try:
            helen = pts_images(args.helen)
        except DataError as e:
            ap.error(f"--helen: {e}")
    if args.setup_peers:
        for p in PEERS.values():
            setup(p, args.venvs)

    load = os.getloadavg()[0]
    import torch

    work = args.work_dir or Path(tempfile.gettempdir()) / "keypoint-benchmarks"
    work.mkdir(parents=True, exist_ok=True)
    scale = sections.QUICK if args.quick else sections.FULL
    every = systems(torch.cuda.is_available(), args.venvs)
    results = Results()
    for s in every:
        if s.missing:
            results.notes[s.label] = s.missing
            print(f"{s.label}: {s.missing}", file=sys.stderr)
    ready = [s for s in every if not s.missing]
    with tempfile.TemporaryDirectory(dir=work) as run_dir:
        heldout = ytf68_images(args.data / "ytf68")
        sections.accuracy(ready, "ytf68", heldout, scale, Path(run_dir), results)
        if helen:
            sections.accuracy(ready, "helen", helen, scale, Path(run_dir), results)
            sections.turned(helen, scale, results)
        sections.tilt(ready, heldout, scale, Path(run_dir), results)
        sections.speed(ready, args.data / "videos" / sections.SPEED_SOURCE, scale, work, Path(run_dir), results)
        sections.stability(ready, args.data / "ytf68" / sections.STABILITY_FACE, scale, work, Path(run_dir), results)
        if not args.quick:
            sections.events(ready, args.data / "ytf68", work, Path(run_dir), results)
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    write_page(args.output, results, every, command.strip(), load, args.venvs, quick=args.quick)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", "Mean of empty slice")  # a system that never finds the face: "-" on the page
    sys.exit(main())
