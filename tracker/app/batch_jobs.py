"""The unit of work of a folder run (tracker/app/batch.py): which videos, where their outputs go, and
one video annotated through the single-file path (`tracker.app.run.annotate`) into outputs that are
complete or absent.

Complete or absent: a video's outputs are written under hidden temporary names beside the final
ones (`.NAME.partial.csv`, `.NAME.partial.mp4`) and renamed into place, in one atomic step each, only
once every frame is in and the files are closed and on disk. A final name therefore always holds a
complete output; a failed or interrupted video's partial files are removed (or, after a power cut,
overwritten by the next run).
"""
from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kaggle_framing.weights_contract import WeightsError
from tracker.app.atomic import commit, partial
from tracker.app.config import RunConfig, TrackerSettings
from tracker.app.interrupts import Stop

VIDEO_EXTENSIONS = frozenset(".mp4 .m4v .mov .avi .mkv .webm .mpg .mpeg .wmv .flv .3gp .ts .mts .m2ts .ogv".split())
WRITABLE_EXTENSIONS = frozenset(".mp4 .avi .mkv .mov".split())  # an annotated copy keeps these; others get .mp4
STATUSES = ("done", "skipped", "failed", "interrupted", "not run")


@dataclass
class Job:
    video: Path  # the folder / relative
    relative: str  # the video's path under the folder, POSIX style: its name in the report
    csv: Path | None
    output: Path | None

    @property
    def outputs(self) -> list[Path]:
        return [p for p in (self.csv, self.output) if p is not None]

    def complete(self) -> bool:
        """Every output is in place (so complete) and newer than the video."""
        try:
            changed = self.video.stat().st_mtime
            return all(p.stat().st_mtime >= changed for p in self.outputs)
        except OSError:
            return False


@dataclass
class Result:
    file: str
    status: str  # one of STATUSES
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    error: str = ""
    size: int = 0  # the video's size (bytes) and time: an unchanged video that failed is not retried
    modified: float = 0.0
    fatal: bool = field(default=False, repr=False)  # no video can be done (the weights, the detector)
    warnings: list[str] = field(default_factory=list, repr=False)  # the tracker's, for a done video

    def row(self) -> dict:
        row = asdict(self)
        del row["fatal"], row["warnings"]
        return row


def find_videos(root: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Video files under `root` by extension, sorted, leaving out hidden names and the folders in
    `skip` (outputs kept inside the input folder). Links to folders outside `root` are followed,
    each folder once."""
    top = root.resolve()
    skip = {p.resolve() for p in skip}
    seen: set[Path] = set()
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = Path(folder).resolve()
        if real in seen or real in skip:
            dirs[:] = []
            continue
        seen.add(real)
        # A link to a folder inside `root` is walked as that folder, under its own name.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (
            os.path.islink(os.path.join(folder, d)) and Path(folder, d).resolve().is_relative_to(top)))
        found += [Path(folder) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(found)


def plan(root: Path, csv_dir: Path | None, video_dir: Path | None) -> list[Job]:
    """One job per video under `root`: `csv_dir/<relative>.csv`, `video_dir/<relative>` (.mp4 where
    OpenCV cannot write the video's own container)."""
    jobs = []
    for video in find_videos(root, [d for d in (csv_dir, video_dir) if d is not None]):
        relative = video.relative_to(root)
        csv = csv_dir / relative.with_suffix(".csv") if csv_dir else None
        output = None
        if video_dir:
            writable = relative.suffix.lower() in WRITABLE_EXTENSIONS
            output = video_dir / (relative if writable else relative.with_suffix(".mp4"))
        jobs.append(Job(video, relative.as_posix(), csv, output))
    return jobs


def clashes(jobs: list[Job]) -> dict[str, str]:
    """{file: why} for each video whose outputs would overwrite an earlier one's (`a.avi` and
    `a.mp4` both make `a.csv`) or the video itself."""
    owner: dict[Path, str] = {}
    found = {}
    for job in jobs:
        for path in job.outputs:
            if path.resolve() == job.video.resolve():
                found[job.relative] = f"its output {path} would be the video itself"
            elif path in owner:
                found[job.relative] = f"its output {path} is also that of {owner[path]}"
            owner.setdefault(path, job.relative)
    return found


# ---------------------------------------------------------------------------------------------
# One video, in a worker process (or a Ray task)

_trackers: dict[TrackerSettings, object] = {}  # one Tracker per process, built for its first video


def _tracker(settings: TrackerSettings):
    from tracker.app.run import build_tracker  # (see annotate_file)

    if settings not in _trackers:
        _trackers[settings] = build_tracker(settings)
    tracker = _trackers[settings]
    tracker.reset()  # a new video: what it finds is what a fresh Tracker finds
    return tracker


def _watched(frames: Iterable, stop: Callable[[], bool], on_frames: Callable[[int], None] | None) -> Iterator:
    """`frames`, ended early (as by Ctrl-C) once `stop()`; `on_frames(n)` now and then: n more went by."""
    count = told = 0
    last = time.monotonic()
    for count, frame in enumerate(frames, 1):
        if stop():
            raise Stop()
        yield frame
        if on_frames and time.monotonic() - last > 0.5:
            on_frames(count - told)
            told, last = count, time.monotonic()
    if on_frames:
        on_frames(count - told)


def settle(job: Job, result: Result) -> None:
    """A done video's partial files renamed into place, all or none; anyone else's removed."""
    committed = []
    try:
        for path in job.outputs if result.status == "done" else []:
            commit(partial(path), path)
            committed.append(path)
    except OSError as e:
        result.status, result.error = "failed", f"cannot write {e.filename}: {e.strerror}"
        for path in committed:
            path.unlink(missing_ok=True)
    if result.status != "done":
        for path in job.outputs:
            partial(path).unlink(missing_ok=True)


def annotate_file(job: Job, config: RunConfig, stop: Callable[[], bool] = lambda: False,
                  on_frames: Callable[[int], None] | None = None, name: str | None = None) -> Result:
    """One video into its outputs, complete or absent; never raises for a bad video (the Result says
    what happened). `stop()`: end now, as "interrupted"; `name`: the CSV's `source` (default the path)."""
    # Here, not at the top: the folder run's driver imports this module, and only its workers load
    # OpenCV, onnxruntime and the model (the driver starts in a fraction of the time).
    from tracker.app.loop import annotate
    from tracker.app.output_paths import OutputError
    from tracker.app.sinks import CsvSink, VideoSink
    from tracker.app.sources import InputError, VideoSource
    from tracker.detector import DetectorError
    from tracker.tracking import prepare

    start = time.perf_counter()
    result = Result(job.relative, "failed")
    if stop():
        result.status = "not run"
        return result
    source = None
    sinks = []
    messages = io.StringIO()  # the tracker's warnings: the driver prints them above its progress bar
    try:
        with contextlib.redirect_stderr(messages):
            tracker = _tracker(config.tracker)
            source = VideoSource(job.video, name=name, prepare=prepare)
            for path in job.outputs:
                path.parent.mkdir(parents=True, exist_ok=True)
            # Each sink writes to partial(its path); settle() renames them into place or removes them.
            if job.csv:
                sinks.append(CsvSink(job.csv, [job.video]))
            if job.output:
                sinks.append(VideoSink(job.output, source.fps, source.size, [job.video]))
            counts = annotate(_watched(source, stop, on_frames), tracker, sinks)
        result.frames, result.faces = counts.frames, counts.faces
        if counts.interrupted:
            result.status = "interrupted"
        elif source.cut_short:  # a damaged video: its outputs would pass for complete, so none
            result.error = source.cut_short
        else:
            result.status = "done"
    except (InputError, OutputError, OSError) as e:
        result.error = str(e).removeprefix(f"{job.video}: ")
    except (WeightsError, DetectorError) as e:
        result.error, result.fatal = str(e), True
    except Exception as e:  # noqa: BLE001 - a decoder's or codec's surprise fails this video, not the job
        result.error = f"{type(e).__name__}: {e}".splitlines()[0]
    finally:
        for closable in [*sinks, source]:
            if closable is not None:
                try:
                    closable.close()
                except OutputError as e:  # the CSV's last rows could not be written (a full disk)
                    result.status, result.error = "failed", result.error or str(e)
        settle(job, result)
    result.seconds = round(time.perf_counter() - start, 2)
    if result.status == "done":
        result.warnings = [line for line in messages.getvalue().splitlines() if line.strip()]
    return result
