"""A folder of videos: `run_tracker.py --video DIR --csv CSV_DIR [--output VIDEO_DIR] [--workers N] [--ray]`.

Every video under DIR (by extension, at any depth) gets `CSV_DIR/<its path under DIR>.csv` and an
annotated copy at the same path under VIDEO_DIR, through the single-file path with one Tracker per
worker process (tracker/app/batch_jobs.py); `--ray` runs the same jobs as Ray tasks (tracker/app/batch_ray.py).

Resumable: a video whose outputs are all in place is skipped. A final name only ever holds a complete
output (written aside and renamed once complete, see tracker/app/batch_jobs.py), so "in place" means
"complete"; an output older than its video is redone. Ctrl-C (or SIGTERM) stops every worker within a
frame: the videos finished are kept, the others leave nothing, and the next run does the rest. A
video that fails (not a video, truncated, unreadable) is named with its reason and the job goes on; its
failure is remembered in the report with its size and time, and it is tried again only once it
changes (or with `--retry-failed`).

`report.json`, in CSV_DIR (else VIDEO_DIR): a summary and one line per video with file, status (done,
skipped, failed, interrupted, not run), frames, faces, seconds, error.
Exit status: 0, 1 when a video failed, 130 when interrupted, 2 when the job cannot run.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tracker.app.config import RunConfig
from tracker.app.atomic import commit, partial
from tracker.app.batch_jobs import STATUSES, VIDEO_EXTENSIONS, Job, Result, annotate_file, clashes, plan
from tracker.app.batch_ray import RayError, require_ray, run_ray

REPORT = "report.json"
# Which of the videos in flight crashed the process is not known: such a failure is retried next run.
WORKER_DIED = "a worker process died while on it (this video or one beside it crashed it)"


class BatchError(RuntimeError):
    """The job cannot run: one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Local worker processes

_worker: dict = {}  # in each worker: what the pool's initializer gave it


def _start_worker(config: RunConfig, stop, progress) -> None:
    # Ctrl-C reaches every process of the terminal's group; the driver alone decides what it means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Leave without the interpreter's teardown, as run_tracker.py does: every output is settled by
    # then, and tearing down torch took seconds of the driver's wait at Ctrl-C (a loaded 2-core machine).
    atexit.register(os._exit, 0)
    _worker.update(config=config, stop=stop, progress=progress)


def _work(job: Job) -> Result:
    return annotate_file(job, _worker["config"], _worker["stop"].is_set, _worker["progress"].put)


def run_local(config: RunConfig, jobs: list[Job], on_frames: Callable[[int], None],
              on_result: Callable[[Result], None]) -> None:
    """Every job on `config.workers` processes, each result to `on_result` as it comes, frames done to
    `on_frames` as they go. On Ctrl-C (a KeyboardInterrupt here or in the callbacks) the running
    videos stop within a frame and come back "interrupted"; then the KeyboardInterrupt goes on up."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: safe beside the driver's threads
    stop, progress = context.Event(), context.Queue()
    workers = min(config.workers, len(jobs))
    waiting = list(reversed(jobs))
    running: dict = {}
    pool = None
    try:
        while waiting or running:
            if pool is None:
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # so the workers start with Ctrl-C ignored
                try:
                    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                               initargs=(config, stop, progress))
                    for started in [pool.submit(int) for _ in range(workers)]:
                        started.result()  # each submit starts a worker: all of them now, while Ctrl-C is ignored
                finally:
                    signal.signal(signal.SIGINT, previous)
            # One job per worker in flight: when a worker dies, the jobs it may have held are known.
            while waiting and len(running) < workers:
                job = waiting.pop()
                running[pool.submit(_work, job)] = job
            done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress, on_frames)
            for future in done:
                job = running.pop(future)
                try:
                    on_result(future.result())
                except BrokenProcessPool:  # a crash in a decoder, or the system out of memory
                    on_result(Result(job.relative, "failed", error=WORKER_DIED))
                    if pool is not None:
                        pool.shutdown(wait=False)
                        pool = None
    except KeyboardInterrupt:
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        for future, job in running.items():
            with contextlib.suppress(BrokenProcessPool):
                on_result(future.result())
        raise
    finally:
        stop.set()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _drain(progress, on_frames)


def _drain(progress, on_frames: Callable[[int], None]) -> None:
    with contextlib.suppress(Exception):  # queue.Empty, or a queue closed at shutdown
        while True:
            on_frames(progress.get_nowait())


# ---------------------------------------------------------------------------------------------
# The driver


def _interrupt(signum, frame):  # noqa: ARG001 - SIGTERM stops the job as Ctrl-C does
    raise KeyboardInterrupt


def run(config: RunConfig) -> int:
    """The whole folder; returns the exit status."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(config)
    except (BatchError, RayError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before any video started
        print("interrupted", file=sys.stderr)
        return 130


def _prepare(config: RunConfig) -> tuple[list[Job], Path]:
    """The jobs and the report's path; cheap checks first, before any model loads."""
    root = Path(config.video)
    csv_dir, video_dir = (Path(p) if p else None for p in (config.csv, config.output))
    if csv_dir is None and video_dir is None:
        raise BatchError("--video DIR needs --csv DIR and/or --output DIR (folders for the outputs)")
    if video_dir is not None and video_dir.resolve() == root.resolve():
        raise BatchError(f"--output {video_dir}: is the input folder; choose another folder")
    if config.ray:
        require_ray()
    if config.tracker.weights and not Path(config.tracker.weights).exists():  # (the default: the shipped weights)
        raise BatchError(f"{config.tracker.weights}: weights file not found")
    for folder in (csv_dir, video_dir):
        try:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BatchError(f"{folder}: cannot create the folder ({e.strerror})") from None
    jobs = plan(root, csv_dir, video_dir)
    if not jobs:
        raise BatchError(f"{root}: no video files in it (by extension: {' '.join(sorted(VIDEO_EXTENSIONS))})")
    return jobs, (csv_dir or video_dir) / REPORT


def _triage(jobs: list[Job], before: dict[str, dict], retry_failed: bool) -> tuple[dict[str, Result], list[Job]]:
    """What is settled already (complete; failed in an earlier run and unchanged since; outputs that
    clash), with its failures named on stderr, and what is to do."""
    settled, todo = {}, []
    clash = clashes(jobs)
    for job in jobs:
        last = before.get(job.relative, {})
        if job.relative in clash:
            settled[job.relative] = Result(job.relative, "failed", error=clash[job.relative])
            print(f"failed: {job.relative}: {clash[job.relative]}", file=sys.stderr)
        elif job.complete():
            settled[job.relative] = Result(job.relative, "skipped", last.get("frames", 0), last.get("faces", 0))
        elif (last.get("status") == "failed" and not retry_failed and last.get("error") != WORKER_DIED
              and _unchanged(job.video, last)):
            settled[job.relative] = Result(job.relative, "failed", error=last.get("error", ""))
            print(f"failed: {job.relative}: {last.get('error')} (in an earlier run, and the video has not changed "
                  "since; --retry-failed tries it again)", file=sys.stderr)
        else:
            todo.append(job)
    return settled, todo


def _unchanged(video: Path, row: dict) -> bool:
    stat = video.stat()
    return row.get("size") == stat.st_size and row.get("modified") == stat.st_mtime


def _execute(config: RunConfig, todo: list[Job], results: dict[str, Result]) -> str | None:
    """Run the jobs under one progress bar, results into `results`; failures named as they come.
    Returns why the job stopped early ("interrupted", or the error that no video can get past)."""
    # Here, not at the top: the driver loads OpenCV only once the job is known to run (see batch_jobs).
    from tqdm import tqdm

    from tracker.app.sources import frame_count

    expected = {job.relative: frame_count(job.video) for job in todo}
    todo = sorted(todo, key=lambda job: -expected[job.relative])  # longest first: none left alone at the end
    bar = tqdm(total=sum(expected.values()), unit=" frames", desc=f"0/{len(todo)} videos", dynamic_ncols=True,
               mininterval=0.2 if sys.stderr.isatty() else 10, file=sys.stderr)
    stopped, finished = None, 0

    def on_result(result: Result) -> None:
        nonlocal stopped, finished
        results[result.file] = result
        bar.total -= expected.get(result.file, 0) - result.frames  # a short video: its other frames never come
        finished += result.status in ("done", "failed")
        bar.set_description_str(f"{finished}/{len(todo)} videos", refresh=False)
        for line in result.warnings:
            bar.write(f"{result.file}: {line}", file=sys.stderr)
        if result.fatal and stopped is None:
            stopped = result.error
            raise KeyboardInterrupt  # stop the others: no video gets past this
        if result.status == "failed" and not result.fatal:
            bar.write(f"failed: {result.file}: {result.error}", file=sys.stderr)

    try:
        (run_ray if config.ray else run_local)(config, todo, bar.update, on_result)
    except KeyboardInterrupt:
        stopped = stopped or "interrupted"
    finally:
        bar.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return stopped


def _run(config: RunConfig) -> int:
    start = time.perf_counter()
    jobs, report = _prepare(config)
    results, todo = _triage(jobs, _read_report(report), config.retry_failed)
    where = "on Ray" if config.ray else f"on {min(config.workers, len(todo))} worker processes"
    print(f"{len(jobs)} videos under {config.video}: {len(jobs) - len(todo)} complete or failed before, "
          f"{len(todo)} to do" + (f" {where}" if todo else ""), file=sys.stderr)
    stopped = _execute(config, todo, results) if todo else None
    if stopped not in (None, "interrupted"):
        print(f"error: {stopped}", file=sys.stderr)
        return 2

    rows = [results.get(job.relative) or Result(job.relative, "not run") for job in jobs]
    for job, row in zip(jobs, rows):
        with contextlib.suppress(OSError):
            stat = job.video.stat()
            row.size, row.modified = stat.st_size, stat.st_mtime
    count = {status: sum(row.status == status for row in rows) for status in STATUSES}
    frames = sum(row.frames for row in rows if row.status != "skipped")
    faces = sum(row.faces for row in rows if row.status != "skipped")
    wall = time.perf_counter() - start
    _write_report(report, rows, {**count, "frames": frames, "faces": faces, "seconds": round(wall, 2)})
    left = count["interrupted"] + count["not run"]
    print(f"{count['done']} done, {count['skipped']} skipped, {count['failed']} failed"
          + (f", {left} interrupted or not started (the next run does them)" if stopped else "")
          + f"; {frames} frames, {faces} faces in {wall:.1f} s ({frames / wall:.0f} frames/s); report: {report}",
          file=sys.stderr)
    if stopped:
        return 130
    return 1 if count["failed"] else 0


def _read_report(path: Path) -> dict[str, dict]:
    try:
        return {row["file"]: row for row in json.loads(path.read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _write_report(path: Path, rows: list[Result], summary: dict) -> None:
    files = ",\n".join(json.dumps(row.row()) for row in rows)  # a line per video: easy to read and to grep
    partial(path).write_text(f'{{"summary": {json.dumps(summary)},\n"files": [\n{files}\n]}}\n')
    commit(partial(path), path)
