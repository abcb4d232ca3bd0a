"""The systems compared, each run as a subprocess with the `run_tracker.py` interface, and their CSVs read back."""
from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from benchmarks.peers import HERE as PEERS_DIR, PEERS, VENVS, install_failure
from kaggle_framing import COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class System:
    key: str  # short name: file names, plot legends
    label: str  # as the page names it
    command: tuple[str, ...]  # before --video/--image ... --csv ...
    missing: str = ""  # why it cannot run here ("" when it can)


def ours(device: str, smooth: bool = True, detector: str | None = None) -> System:
    """Our tracker on `device`; `detector`: another than the default (`run_tracker.py --detector`)."""
    flags = ("--device", device) + (() if smooth else ("--no-smooth",)) + (("--detector", detector) if detector else ())
    suffix = ("" if smooth else ", unsmoothed") + (f", {detector} detector" if detector else "")
    return System(f"ours-{device}{'' if smooth else '-raw'}{f'-{detector}' if detector else ''}", f"ours ({device.upper()}{suffix})",
                  (sys.executable, str(ROOT / "run_tracker.py"), "--no-display", *flags))


def floor() -> System:
    return System("floor", "floor (Haar box + Kaggle mean shape)", (sys.executable, str(PEERS_DIR / "floor_tracker.py")))


def peer(name: str, venvs: Path = VENVS) -> System:
    p = PEERS[name]
    missing = ""
    if not p.installed(venvs):
        failure = install_failure(p, venvs)
        missing = (f"could not be installed: {failure}" if failure
                   else "not installed (run `python -m benchmarks --setup-peers`)")
    return System(name, p.label, (str(p.python(venvs)), str(p.script)), missing)


# MediaPipe's 478 points to our 15, two ways (the peer script's --mapping): both rows on the page.
MEDIAPIPE_MAPPINGS = {"learned": "learned map", "vertices": "vertex table"}


def mediapipe(mapping: str, venvs: Path = VENVS) -> System:
    base = peer("mediapipe", venvs)
    return replace(base, key=f"mediapipe-{mapping}", label=f"{base.label} ({MEDIAPIPE_MAPPINGS[mapping]})",
                   command=(*base.command, "--mapping", mapping))


@dataclass
class RunResult:
    csv: Path
    seconds: float  # whole-process wall time, startup included
    stderr: str
    error: str = ""  # a one-line reason when the run failed

    @property
    def ok(self) -> bool:
        return not self.error


def run(system: System, input_flag: str, path: Path, csv_path: Path, *extra: str, timeout: float = 3600) -> RunResult:
    """Run `system` on a video (`--video`) or images (`--image`), writing `csv_path`."""
    command = [*system.command, input_flag, str(path), "--csv", str(csv_path), *extra]
    t = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t
    error = ""
    if proc.returncode != 0 or not csv_path.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        error = f"exit status {proc.returncode}: {last}"
    return RunResult(csv_path, seconds, proc.stderr, error)


def read_faces(csv_path: Path) -> dict[tuple[str, int], list[np.ndarray]]:
    """(source, frame) -> the (15, 2) points of each face on it, in the CSV's order."""
    faces: dict[tuple[str, int], list[np.ndarray]] = defaultdict(list)
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            points = np.array([float(row[c]) for c in COLUMNS]).reshape(-1, 2)
            faces[(row["source"], int(row["frame"]))].append(points)
    return faces


def face_track(csv_path: Path, centres: np.ndarray) -> np.ndarray:
    """(T, 15, 2) points, per video frame, of the face whose points' mean lies nearest `centres[t]`
    (T, 2): the face meant, where a system also reports others (NaN where it reports none)."""
    out = np.full((len(centres), len(COLUMNS) // 2, 2), np.nan)
    for (_, index), faces in read_faces(csv_path).items():
        if index < len(centres):
            out[index] = min(faces, key=lambda p: np.linalg.norm(p.mean(axis=0) - centres[index]))
    return out


STAGE_LINE = re.compile(r"mean ms per frame: (.*)")


def profile_stages(stderr: str) -> dict[str, float]:
    """The per-stage milliseconds `run_tracker.py --profile` prints last ({} when absent)."""
    match = STAGE_LINE.search(stderr)
    if not match:
        return {}
    return {name: float(ms) for name, ms in (part.rsplit(" ", 1) for part in match.group(1).split(", "))}


@dataclass
class Accuracy:
    """Every system's scores on one labelled image set."""
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # system label -> `accuracy.score`
    errors: dict[str, np.ndarray] = field(default_factory=dict)  # per-image NME, for the CED plot


@dataclass
class Results:
    """Everything the page reports, filled in by the sections."""
    accuracy: dict[str, Accuracy] = field(default_factory=dict)  # image set ("ytf68", "helen") -> scores
    tilt: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)  # system -> |angle| -> scores
    turn: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # system -> head-turn bin -> scores
    fps: dict[str, float] = field(default_factory=dict)  # median of the runs
    fps_runs: dict[str, list[float]] = field(default_factory=dict)  # every run, in order
    speed_frames: int = 0
    stages: dict[str, dict[str, float]] = field(default_factory=dict)  # ours: system label -> stage -> ms
    stability: dict[str, dict[str, float]] = field(default_factory=dict)
    trajectories: dict[str, np.ndarray] = field(default_factory=dict)  # x of one point on the moving clip
    true_offsets: np.ndarray | None = None  # the face's true x motion on that clip
    notes: dict[str, str] = field(default_factory=dict)  # system label -> why it is absent
    events: dict[str, list] = field(default_factory=dict)  # system label -> events.EventScore per clip
