#!/usr/bin/env python
"""Real-time facial keypoint tracker: 15 smoothed keypoints on every face.

    python run_tracker.py --camera 0
    python run_tracker.py --video clip.mp4 --output annotated.mp4 --csv keypoints.csv --no-display
    python run_tracker.py --image photos/ --output annotated/ --csv keypoints.csv
    python run_tracker.py --video clips/ --csv keypoints/ --output annotated/ [--workers N] [--ray [ADDRESS]]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from tracker.app.config import RunConfig, TrackerSettings
from tracker.detectors import DEFAULT_DETECTOR, DETECTORS


def default_workers() -> int:
    return os.cpu_count() or 1


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """The command line, checked, as the run's configuration (the one place the Namespace is read)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=int, metavar="N", help="camera index (0 is the default camera)")
    src.add_argument("--video", metavar="PATH", help="a video file, or a folder: every video under it (by extension, "
                     "at any depth), --csv and --output then being folders; resumable: a second run does only "
                     "what is not done (README, \"A folder of videos\")")
    src.add_argument("--image", metavar="PATH_OR_DIR", help="an image, or a folder of images (subfolders included)")
    ap.add_argument("--output", metavar="PATH", help="annotated video (.mp4, .avi, .mkv, .mov), image, or folder "
                    "(for a folder of images: the same subfolders and names)")
    ap.add_argument("--csv", metavar="PATH", help="keypoints CSV: source,frame,face,x,y,w,h + 30 Kaggle columns "
                    "+ time,score (- for standard output)")
    ap.add_argument("--no-display", action="store_true", help="run headless (no window)")
    ap.add_argument("--weights", metavar="PATH", help="cascade .pt, whose .onnx twin beside it runs on the CPU, or an "
                    ".onnx (default: the shipped weights/cascade.pt)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda; any case")
    ap.add_argument("--no-smooth", action="store_true", help="raw points, no One Euro smoothing")
    ap.add_argument("--max-faces", type=int, default=10, metavar="N",
                    help="most faces tracked at once; the largest are kept (default 10)")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS),
                    help="what finds faces: haar (OpenCV's Haar cascades, on the frame and on copies turned 20 and 40 "
                         "degrees), haar-profile (also OpenCV's profile cascade: heads turned to the side; slower) or "
                         f"yunet (OpenCV's YuNet network: also faces tilted further) (default {DEFAULT_DETECTOR})")
    ap.add_argument("--profile", action="store_true", help="print mean milliseconds per stage at the end")
    folder = ap.add_argument_group("a folder of videos (--video DIR)")
    folder.add_argument("--workers", type=int, metavar="N",
                        help=f"videos processed at once (default: one per CPU core, {default_workers()} here; "
                        "measured in BENCHMARKS.md)")
    folder.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="run the videos as Ray tasks on the cluster at ADDRESS (ray://host:10001 or host:6379), "
                             "or on a local Ray without one (pip install ray)")
    folder.add_argument("--retry-failed", action="store_true", help="try again the videos that failed before, unchanged")
    args = ap.parse_args(argv)
    if args.max_faces < 1:
        ap.error("--max-faces must be at least 1")
    config = RunConfig(camera=args.camera, video=args.video, image=args.image, output=args.output, csv=args.csv,
                       display=not args.no_display, profile=args.profile,
                       tracker=TrackerSettings(args.weights, args.device, not args.no_smooth, args.max_faces,
                                               args.detector),
                       workers=args.workers or default_workers(), ray=args.ray, retry_failed=args.retry_failed)
    if not config.batch and (args.workers or args.ray or args.retry_failed):
        ap.error("--workers, --ray and --retry-failed take a folder of videos (--video DIR)")
    if config.batch and args.profile:
        ap.error("--profile takes one video file, not a folder")
    if config.batch and args.csv == "-":
        ap.error("--csv - takes one video file; a folder's CSVs go to a folder (--csv DIR)")
    if args.workers is not None and args.workers < 1:
        ap.error("--workers must be at least 1")
    return config


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    # Before numpy loads: its BLAS (OpenBLAS) would start a thread per core that spins after each call
    # (~0.2 s of CPU over a 2400-frame run, taken from the decoder and the model), for 15x2 matrices.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if config.batch:
        from tracker.app.batch import run as run_folder  # after OPENBLAS_NUM_THREADS; the model loads in the workers only

        return run_folder(config)
    from tracker.app.interrupts import Stop, on_signal, stop_requested  # (light: the standard library only)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        from tracker.app.run import run  # OpenCV and onnxruntime load after the arguments are known to be good
    except (KeyboardInterrupt, Stop):  # a signal while they load: nothing started yet
        print("interrupted", file=sys.stderr)
        return 130
    except ImportError as e:
        if stop_requested():  # the signal landed inside an extension's import, which reports it as its own error
            print("interrupted", file=sys.stderr)
            return 130
        print(f"error: {e} (install the requirements: pip install -r requirements.txt)", file=sys.stderr)
        return 2
    return run(config)


def cli() -> None:
    """The `facial-keypoints` command (pyproject.toml), and `python run_tracker.py`."""
    status = main()
    # Every output is closed by now. Skip the interpreter's teardown, which with torch loaded takes
    # ~0.4 s: a tenth of a short clip's run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    cli()
