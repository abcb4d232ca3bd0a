"""One run of `run_tracker.py` on a camera, a video file or images: a source, the Tracker and a list of sinks."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

from kaggle_framing.weights_contract import DEFAULT_WEIGHTS, WeightsError
from tracker.app.config import RunConfig, TrackerSettings
from tracker.app.interrupts import Stop, on_signal, stop_requested
from tracker.app.loop import annotate
from tracker.app.output_paths import OutputError, check_output_name, check_writable
from tracker.app.profile import Profile
from tracker.app.sinks import STDOUT, CsvSink, ImageSink, Sink, VideoSink, drop_stdout, settle
from tracker.app.images import ImageSource
from tracker.app.sources import CameraSource, InputError, VideoSource
from tracker.app.window import WindowSink, display_available
from tracker.detector import DetectorError
from tracker.detectors import make_detector
from tracker.messages import warn
from tracker.tracking import Tracker, prepare


def build_tracker(settings: TrackerSettings, images: bool = False, live: bool = False) -> Tracker:
    """The Tracker these settings ask for (one per process: a folder run's workers keep theirs)."""
    detector = make_detector(settings.detector, images)
    return Tracker(settings.weights or DEFAULT_WEIGHTS, settings.device, smooth=settings.smooth,
                   max_faces=settings.max_faces, detector=detector, live=live)


def run(config: RunConfig) -> int:
    """Process the whole input; returns the exit status."""
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sinks: list[Sink] = []
    source = tracker = None
    status, error, done = 0, "", False
    try:
        # Cheap checks first: bad arguments or outputs fail before the model loads or a frame is read.
        if config.camera is not None:
            inputs: list[Path] = []
        else:
            inputs = [Path(config.video or config.image)]
        for path in inputs:
            if not path.exists():
                raise InputError(f"{path}: no such file or folder")
        image_folder = Path(config.image) if config.image and Path(config.image).is_dir() else None
        if config.output and image_folder is None:
            check_output_name(Path(config.output), video=not config.image)
            check_writable(Path(config.output), inputs)
        if config.csv and config.csv != STDOUT:
            check_writable(Path(config.csv), inputs)
        tracker = build_tracker(config.tracker, images=bool(config.image), live=config.camera is not None)
        show = config.display
        if show and not display_available():
            warn("no display here; running headless (pass --no-display to silence this)")
            show = False
        if config.camera is not None:
            source = CameraSource(config.camera)
        elif config.video:
            source = VideoSource(config.video, prepare=prepare)
        else:
            source = ImageSource(config.image, skip=Path(config.output) if config.output else None)
        # The outputs last: inputs, weights and device are good, so no file is touched for nothing.
        if config.output:
            if config.image:
                sinks.append(ImageSink(config.output, image_folder, inputs))
            else:
                sinks.append(VideoSink(config.output, source.fps, source.size, inputs))
        if config.csv:
            sinks.append(csv_sink := CsvSink(config.csv, inputs))
            csv_sink.start()
        if show:
            sinks.append(WindowSink(each_key=bool(config.image)))
        profile = Profile()
        counts = annotate(source, tracker, sinks, images=bool(config.image), show_fps=config.camera is not None,
                          profile=profile)
        if config.profile and counts.frames:
            profile.report(counts.frames, tracker.timings, images=bool(config.image), shown=show)
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
    except Exception:
        if not stop_requested():
            raise
        # The signal landed inside an extension's import (onnxruntime turns it into an ImportError).
        print("interrupted", file=sys.stderr)
        status = 130
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
