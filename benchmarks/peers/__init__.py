"""Peer trackers (dlib, MediaPipe), each in its own virtual environment under `.venvs/`.

Each peer is a standalone script beside this file, run with its venv's python, with the interface of
`run_tracker.py` (`--video PATH | --image PATH_OR_DIR`, `--csv OUT`) and the same CSV columns. The
scripts import only cv2, numpy, their library and `kaggle_framing` (NumPy only), never torch
(MediaPipe's also `train.teacher`, NumPy only, for its learned 478 -> 15 map).
"""
from __future__ import annotations

import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENVS = ROOT / ".venvs"
HERE = Path(__file__).resolve().parent
# Face Mesh vertex -> Kaggle point table, chosen by `python -m benchmarks.mediapipe_mapping`.
MEDIAPIPE_MAPPING = HERE / "mediapipe_kaggle15.json"


@dataclass(frozen=True)
class Peer:
    name: str  # the venv's folder name
    label: str  # as the page names it
    script: Path
    requirements: tuple[str, ...]
    version_module: str  # whose __version__ the page reports

    def python(self, venvs: Path = VENVS) -> Path:
        return venvs / self.name / "bin" / "python"

    def installed(self, venvs: Path = VENVS) -> bool:
        return (venvs / self.name / ".complete").exists() and self.python(venvs).exists()

    def version(self, venvs: Path = VENVS) -> str:
        code = f"import {self.version_module} as m; print(m.__version__)"
        out = subprocess.run([str(self.python(venvs)), "-c", code], capture_output=True, text=True, timeout=120)
        return out.stdout.strip() or "?"


# The models ship inside the packages (nothing is downloaded at run time): face_recognition_models
# holds dlib's shape_predictor_68_face_landmarks.dat; mediapipe 0.10.21 still ships the legacy
# `mp.solutions.face_mesh` with its tflite files, and wants numpy < 2.
PEERS: dict[str, Peer] = {
    "dlib": Peer("dlib", "dlib (HOG + 68-point shape predictor)", HERE / "dlib_tracker.py",
                 ("dlib-bin==20.0.1.post1", "face_recognition_models==0.3.0", "numpy",
                  "opencv-python-headless>=4.10,<5"),
                 "dlib"),
    "mediapipe": Peer("mediapipe", "MediaPipe Face Mesh", HERE / "mediapipe_tracker.py",
                      ("mediapipe==0.10.21", "numpy<2"), "mediapipe"),
}


def setup(peer: Peer, venvs: Path = VENVS) -> bool:
    """Create the peer's venv and install its packages. On failure, False, and the reason is kept in
    the venv's `.failed` for the page (`install_failure`)."""
    folder = venvs / peer.name
    print(f"setting up {peer.name} in {folder} ...", flush=True)
    try:
        venv.create(folder, with_pip=True, clear=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return _failed(folder, f"python -m venv failed ({e})")
    proc = subprocess.run([str(peer.python(venvs)), "-m", "pip", "install", "-q", *peer.requirements],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return _failed(folder, f"pip install {' '.join(peer.requirements)} failed: {_last_line(proc.stderr)}")
    check = subprocess.run([str(peer.python(venvs)), str(peer.script), "--self-check"], capture_output=True, text=True)
    if check.returncode != 0:
        print(check.stderr[-2000:], file=sys.stderr)
        return _failed(folder, f"installed but does not run: {_last_line(check.stderr)}")
    (folder / ".complete").write_text(" ".join(peer.requirements) + "\n")
    print(f"{peer.name}: ready ({peer.version(venvs)})", flush=True)
    return True


def install_failure(peer: Peer, venvs: Path = VENVS) -> str:
    """Why the last `setup` of this peer failed ("" if it did not, or never ran)."""
    failed = venvs / peer.name / ".failed"
    return failed.read_text().strip() if failed.exists() else ""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and not line.startswith("WARNING")]
    return lines[-1] if lines else "no output"


def _failed(folder: Path, reason: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".failed").write_text(reason + "\n")
    print(f"{folder.name}: {reason}", file=sys.stderr, flush=True)
    return False
