"""The run loop behind `run_tracker.py`: a source, the Tracker, the outputs, the window."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing.weights_contract import DEFAULT_WEIGHTS, WeightsError
from tracker.app.drawing import displayable, draw_faces
from tracker.detector import DetectorError
from tracker.haar_detector import HaarDetector
from tracker.app.atomic import commit, kept
from tracker.app.outputs import (STDOUT, CsvSink, ImageSink, OutputError, OutputThread, VideoSink, check_output_name,
                             check_writable, drop_stdout)
from tracker.messages import warn
from tracker.pipeline import Frame
from tracker.app.sources import CameraSource, ImageSource, InputError, VideoSource
from tracker.tracking import Tracker, prepare

STAGES = ("decode", "detect", "crop", "model", "smooth", "draw", "write")
WINDOW = "facial keypoints (q or Esc quits)"


class Stop(BaseException):
    """SIGTERM, turned into an orderly stop so outputs are closed whole. A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` on the way (the weights loader) takes it
    for an error of its own."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Stop()


def display_available() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def build_tracker(args: argparse.Namespace) -> Tracker:
    """The Tracker the command line asks for (one per process: `tracker/app/batch.py` builds its own)."""
    detector = HaarDetector.for_images() if args.image else HaarDetector()
    return Tracker(args.weights or DEFAULT_WEIGHTS, args.device, smooth=not args.no_smooth, max_faces=args.max_faces,
                   detector=detector, live=args.camera is not None)


@dataclass
class Counts:
    """What one run of `annotate` did."""

    frames: int = 0
    faces: int = 0
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM; the outputs hold the frames done
    reader_gone: bool = False  # `--csv -`: standard output's reader went away (a closed pipe)


def settle(sinks: list, done: bool) -> list[Path]:
    """The sinks' temporary files (their writers closed): `done`, renamed into place; else, where any
    frame was written, kept under their partial names (returned); else removed."""
    files = [(sink.temporary, sink.path) for sink in sinks if sink.temporary is not None]
    files = [(temporary, path) for temporary, path in files if temporary.exists()]
    if done:
        for temporary, path in files:
            commit(temporary, path)
        return []
    if not any(sink.written for sink in sinks):
        for temporary, _ in files:
            temporary.unlink()
        return []
    for temporary, path in files:
        os.replace(temporary, kept(path))
    return [kept(path) for _, path in files]


def run(args: argparse.Namespace) -> int:
    """Process the whole input; returns the exit status."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    sinks: list = []
    source = tracker = None
    status, error, done = 0, "", False
    try:
        # Cheap checks first: bad arguments or outputs fail before the model loads or a frame is read.
        if args.camera is not None:
            inputs: list[Path] = []
        else:
            inputs = [Path(args.video or args.image)]
        for path in inputs:
            if not path.exists():
                raise InputError(f"{path}: no such file or folder")
        image_folder = Path(args.image) if args.image and Path(args.image).is_dir() else None
        if args.output and image_folder is None:
            check_output_name(Path(args.output), video=not args.image)
            check_writable(Path(args.output), inputs)
        if args.csv and args.csv != STDOUT:
            check_writable(Path(args.csv), inputs)
        tracker = build_tracker(args)
        show = not args.no_display
        if show and not display_available():
            warn("no display here; running headless (pass --no-display to silence this)")
            show = False
        if args.camera is not None:
            source = CameraSource(args.camera)
        elif args.video:
            source = VideoSource(args.video, prepare=prepare)
        else:
            source = ImageSource(args.image, skip=Path(args.output) if args.output else None)
        # The outputs last: inputs, weights and device are good, so no file is touched for nothing.
        image_sink = video_sink = csv_sink = None
        if args.output:
            if args.image:
                sinks.append(image_sink := ImageSink(args.output, image_folder, inputs))
            else:
                sinks.append(video_sink := VideoSink(args.output, source.fps, source.size, inputs))
        if args.csv:
            sinks.append(csv_sink := CsvSink(args.csv, inputs))
            csv_sink.start()
        counts = annotate(args, source, tracker, csv_sink, video_sink, image_sink, show)
        if counts.reader_gone and any(sink.temporary for sink in sinks):
            raise OutputError("standard output: its reader went away (a closed pipe)")
        done = counts.frames > 0 or not counts.interrupted
        if counts.interrupted:
            print("\ninterrupted: outputs closed with every frame processed so far", file=sys.stderr)
        print(f"{counts.frames} frames, {counts.faces} face detections", file=sys.stderr)
        status = 130 if counts.interrupted else 0
    except (InputError, OutputError, WeightsError, DetectorError) as e:
        error, status = str(e), 2
    except (KeyboardInterrupt, Stop):  # before the first frame (loading the model): nothing to keep
        print("interrupted", file=sys.stderr)
        status = 130
    except BrokenPipeError:  # `--csv -` to a reader gone before the header
        drop_stdout()
    finally:
        # Closing finalises the files: a second Ctrl-C or SIGTERM must not cut it short.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for sink in sinks:
                try:
                    sink.close()
                except OutputError as e:  # the last rows could not be written (a full disk)
                    error, status = error or str(e), 2  # (said once: the first failure is the cause)
            try:
                kept_files = settle(sinks, done and status != 2)
            except OSError as e:
                error, status, kept_files = error or f"cannot write {e.filename}: {e.strerror}", 2, []
            if kept_files:
                error += f"; what was written is kept in {', '.join(map(str, kept_files))}"
            if error:
                print(f"error: {error}", file=sys.stderr)
            if source is not None:
                source.close()
            if tracker is not None:
                tracker.close()
        finally:
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return status


def annotate(args: argparse.Namespace, source: Iterable[Frame], tracker: Tracker, csv_sink: CsvSink | None,
             video_sink: VideoSink | None, image_sink: ImageSink | None = None, show: bool = False) -> Counts:
    """Every frame of `source` through the tracker into the sinks (and the window); a Ctrl-C or
    SIGTERM ends it early with the outputs holding every frame done (the caller closes them).
    Annotated frames are drawn and written on an OutputThread (with them, the CSV rows too, in order);
    CSV rows alone, and the window, on this thread."""
    timings: dict[str, float] = defaultdict(float)
    frames = faces_found = 0
    fps, last = 0.0, time.perf_counter()
    interrupted = reader_gone = False
    latencies: list[float] = []  # frame in hand (a camera's grab) -> faces out (drawn, where shown), seconds
    main_cpu = time.thread_time()

    def write(frame: Frame, faces: list, canvas: np.ndarray | None, fps_shown: float | None) -> None:
        t = time.perf_counter()
        if canvas is None and (video_sink or image_sink):
            # Drawn here or on the tracker's thread (shown), never both: one thread adds to "draw".
            canvas = draw_faces(displayable(frame.image), faces, fps_shown)
            timings["draw"] += time.perf_counter() - t
            t = time.perf_counter()
        if csv_sink:
            csv_sink.write(frame.source, frame.index, None if args.image else frame.timestamp, faces)
        if video_sink:
            video_sink.write(canvas)
        if image_sink:
            image_sink.write(frame.source, canvas)
        timings["write"] += time.perf_counter() - t

    # Annotated frames go to a thread of their own (drawing and encoding: ~1.4 ms a 640x480 frame).
    # CSV rows alone are written here: ~10 us a frame, less than handing them to a thread costs.
    outputs = OutputThread() if video_sink or image_sink else None
    try:
        try:
            for frame in source:
                arrived = time.perf_counter()
                timings["decode"] += frame.decode_ms / 1000
                left_out = tracker.faces_left_out
                faces = tracker.process_image(frame.image) if args.image else tracker.process(frame.image, frame.timestamp, frame.prepared)
                if tracker.faces_left_out and not left_out:
                    warn(f"{frame.source}: more than {args.max_faces} faces (frame {frame.index}); keeping the largest "
                         "(--max-faces; said once)")
                frames += 1
                faces_found += len(faces)
                now = time.perf_counter()
                fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if frames > 1 else 0.0
                last = now
                fps_shown = fps if args.camera is not None or show else None
                canvas = draw_faces(displayable(frame.image), faces, fps_shown) if show else None
                if show:
                    timings["draw"] += time.perf_counter() - now
                latencies.append(time.perf_counter() - arrived)
                if outputs:
                    outputs.submit(write, frame, faces, canvas, fps_shown)
                elif csv_sink:
                    write(frame, faces, canvas, fps_shown)
                if show:
                    cv2.imshow(WINDOW, canvas)
                    if cv2.waitKey(1 if args.image is None else 0) & 0xFF in (ord("q"), 27):
                        break
        finally:
            # Every frame handed to the outputs is written before the caller closes them, whatever
            # ended the loop: a second Ctrl-C here only restarts the wait.
            while outputs:
                try:
                    outputs.close()
                    break
                except (KeyboardInterrupt, Stop):
                    interrupted = True
    except (KeyboardInterrupt, Stop):
        interrupted = True
    except BrokenPipeError:  # `--csv - | head`: the reader has gone; stop quietly, as Unix tools do
        drop_stdout()
        reader_gone = True
    finally:
        if show:
            cv2.destroyAllWindows()
    timings.update({k: v for k, v in tracker.timings.items()})
    if args.profile and frames:
        print("mean ms per frame: " + ", ".join(f"{s} {1000 * timings[s] / frames:.2f}" for s in STAGES), file=sys.stderr)
        if not args.image:
            print("(decoding a video file, face detection while faces are tracked, and drawing and writing the "
                  "outputs run on other threads)", file=sys.stderr)
        print(f"main thread CPU: {1000 * (time.thread_time() - main_cpu) / frames:.2f} ms per frame", file=sys.stderr)
        ms = 1000 * np.array(latencies)
        upto = "drawn" if show else "faces out"
        print(f"latency, frame in hand -> {upto}: mean {ms.mean():.2f} ms, 95th percentile {np.percentile(ms, 95):.2f} ms, "
              f"max {ms.max():.2f} ms", file=sys.stderr)
    return Counts(frames, faces_found, interrupted, reader_gone)
