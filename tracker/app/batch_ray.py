"""`--ray [ADDRESS]`: a folder run (tracker/app/batch.py) as Ray tasks, on a cluster or a local Ray.

Each task gets one video's bytes (and the weights file's and its twins', once per machine) and returns its outputs' bytes,
which the driver writes as a local run would: the workers need no shared file system, and the
outputs equal a local run's. A few videos per CPU are in flight at a time, so that the cluster stays
busy without the driver holding every video in memory. Ray is optional: `pip install ray`.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import tracker
from kaggle_framing.weights_contract import DEFAULT_WEIGHTS
from tracker.app.atomic import partial
from tracker.app.batch_jobs import Job, Result, annotate_file, settle
from tracker.app.config import RunConfig

RAY_VERSION = "2.60.0"  # the version this was tested with (README)


class RayError(RuntimeError):
    """Ray is missing or cannot start: one line."""


def _weights_files(path: Path) -> dict[str, bytes]:
    """The weights file and its twins beside it (same name, other suffix: an exported runtime's copy)."""
    return {p.name: p.read_bytes() for p in sorted(path.parent.glob(f"{path.stem}.*")) if p.is_file()}


def _annotate_remote(job: Job, video: bytes, weights: dict[str, bytes],
                     config: RunConfig) -> tuple[Result, bytes, bytes]:
    """On a Ray worker: the video and the weights into local files, the outputs' bytes back."""
    folder = Path(tempfile.gettempdir()) / "keypoint-batch"
    digest = hashlib.sha1(b"".join(name.encode() + data for name, data in sorted(weights.items()))).hexdigest()[:16]
    weights_dir = folder / f"weights-{digest}"
    if not weights_dir.exists():  # once per machine; written aside and renamed, as workers may race
        scratch = folder / f".{os.getpid()}.{weights_dir.name}"
        scratch.mkdir(parents=True, exist_ok=True)
        for name, data in weights.items():
            (scratch / name).write_bytes(data)
        with contextlib.suppress(OSError):  # another worker was first
            os.rename(scratch, weights_dir)
        shutil.rmtree(scratch, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        local = Job(Path(tmp, f"video{job.video.suffix}"), job.relative,
                    Path(tmp, "out.csv") if job.csv else None, Path(tmp, f"out{job.output.suffix}") if job.output else None)
        local.video.write_bytes(video)
        weights_here = str(weights_dir / Path(config.tracker.weights).name)
        result = annotate_file(local, replace(config, tracker=replace(config.tracker, weights=weights_here)),
                               name=str(job.video))
        outputs = [p.read_bytes() if p and result.status == "done" else b"" for p in (local.csv, local.output)]
    return result, outputs[0], outputs[1]


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise RayError(f"--ray: Ray is not installed (pip install 'ray=={RAY_VERSION}')") from None


def run_ray(config: RunConfig, jobs: list[Job], on_frames: Callable[[int], None],
            on_result: Callable[[Result], None]) -> None:
    """As `tracker.app.batch.run_local`, on Ray (`config.ray`: an address, or "local"); progress comes
    per video."""
    require_ray()
    import ray

    options: dict = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    if config.ray == "local":
        options["num_cpus"] = config.workers
    else:  # the cluster's workers get the code from here: the tracker package and the shared contract
        here = Path(tracker.__file__).resolve().parents[1]
        modules = [str(here / "tracker"), str(here / "kaggle_framing")]
        options.update(address=config.ray, runtime_env={"py_modules": modules})
    try:
        ray.init(**options)
    except Exception as e:  # noqa: BLE001 - no cluster at that address, versions that differ, ...
        raise RayError(f"--ray {config.ray}: cannot start or reach Ray ({str(e).splitlines()[0]})") from None
    running: dict = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=1)(_annotate_remote)
        config = replace(config, tracker=replace(config.tracker, weights=str(config.tracker.weights or DEFAULT_WEIGHTS)))
        weights = ray.put(_weights_files(Path(config.tracker.weights)))
        limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
        waiting = list(reversed(jobs))
        while waiting or running:
            while waiting and len(running) < limit:
                job = waiting.pop()
                try:
                    running[task.remote(job, job.video.read_bytes(), weights, config)] = job
                except OSError as e:
                    on_result(Result(job.relative, "failed", error=f"cannot read it ({e.strerror})"))
            if running:
                ready, _ = ray.wait(list(running), num_returns=1)
                job = running.pop(ready[0])
                try:
                    result, csv_bytes, video_bytes = ray.get(ready[0])
                except ray.exceptions.RayError as e:  # the worker died (twice: the task is retried once)
                    result, csv_bytes, video_bytes = Result(job.relative, "failed", error=str(e).splitlines()[0]), b"", b""
                try:
                    for path, data in ((job.csv, csv_bytes), (job.output, video_bytes)):
                        if path is not None and result.status == "done":
                            path.parent.mkdir(parents=True, exist_ok=True)
                            partial(path).write_bytes(data)
                except OSError as e:
                    result.status, result.error = "failed", f"cannot write {e.filename}: {e.strerror}"
                settle(job, result)
                on_frames(result.frames)
                on_result(result)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        for ref, job in running.items():
            ray.cancel(ref, force=True)
            on_result(Result(job.relative, "interrupted"))
        raise
    finally:
        ray.shutdown()
