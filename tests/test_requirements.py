"""What each install gives: `requirements.txt` (and `pip install .`) is the runtime alone, no torch;
`requirements-train.txt` (`.[train]`) adds training, export, CUDA and the benchmarks;
`requirements-dev.txt` (`.[dev]`) adds the tests' tools. pyproject.toml's extras are the files' own
lines, and every package the code imports is declared in one of them."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.helpers import headless_env

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "talking_face.mp4"

# Import name -> the distribution that provides it, where they differ.
DISTRIBUTION = {"cv2": "opencv-python"}
# The benchmark peers run in their own venvs, with the packages benchmarks/peers/__init__.py installs there.
PEER_ONLY = {"mediapipe", "dlib"}
# Installed only for training, never on the runtime's path (`run_tracker.py` on the CPU).
TRAINING_ONLY = ["torch", "torchvision", "onnx", "onnxscript", "pandas", "matplotlib", "ray"]


def own_lines(name: str) -> tuple[list[str], list[str]]:
    """A requirements file's requirements and the files it includes (`-r`)."""
    requirements, includes = [], []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r"):
            includes.append(line[2:].strip())
        elif line:
            requirements.append(line)
    return requirements, includes


def declared(name: str) -> set[str]:
    """Distribution names a requirements file declares, with the files it includes."""
    requirements, includes = own_lines(name)
    names = {normalise(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}
    for included in includes:
        names |= declared(included)
    return names


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_pyproject_extras_are_the_requirement_files():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["dependencies"] == {"file": ["requirements.txt"]}
    extras = project["project"]["optional-dependencies"]
    train, train_includes = own_lines("requirements-train.txt")
    dev, dev_includes = own_lines("requirements-dev.txt")
    assert train_includes == ["requirements.txt"] and dev_includes == ["requirements-train.txt"]
    assert extras["train"] == train
    assert extras["dev"] == ["facial-keypoints[train]", *dev]
    assert "torch" not in declared("requirements.txt") and "torch" in declared("requirements-train.txt")


def test_ci_runs_the_readme_test_command():
    """.ci/run is the README's "Test it" command without the venv it makes: the same install, the same pytest."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"## Test it\n\n```bash\n(.*?)\n```", readme, re.S).group(1)
    steps = [step.strip() for step in command.split("&&")]
    assert steps[0].startswith("python3 -m venv ") and len(steps) == 3
    venv_python = steps[1].split()[0]
    assert steps[1:] == [f"{venv_python} -m pip install -r requirements-dev.txt", f"{venv_python} -m pytest -q tests"]
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == "pip install -q -r requirements-dev.txt && python -m pytest -q tests"


def project_sources() -> list[Path]:
    """The project's .py files: not those of venvs (.venv/, .venvs/), runs or data in the checkout."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [s for s in subfolders if not s.startswith(".") and s not in ("build", "runs", "data", "__pycache__")]
        found += [Path(folder) / f for f in files if f.endswith(".py")]
    return found


def test_every_imported_package_is_declared():
    sources = project_sources()
    local = {p.stem for p in sources} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    imported: dict[str, set[str]] = {}
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - local - PEER_ONLY:
                imported.setdefault(normalise(DISTRIBUTION.get(top, top)), set()).add(str(path.relative_to(ROOT)))
    missing = {name: sorted(files) for name, files in imported.items() if name not in declared("requirements-dev.txt")}
    assert not missing, f"imported but in no requirements file: {missing}"


# Loaded by every Python process of the run (a folder run's workers too): `import torch` fails there,
# as in a venv of requirements.txt alone.
BLOCKER = f"import sys\nfor name in {TRAINING_ONLY!r}:\n    sys.modules[name] = None\n"


@pytest.mark.parametrize("folder", [False, True], ids=["one video", "a folder of videos"])
def test_the_runtime_runs_without_the_training_packages(tmp_path, folder):
    """The sample clip's first second, alone and as a folder run (its progress bar, its worker
    processes), with every training-only package made unimportable in every process."""
    clips = tmp_path / "clips"
    clips.mkdir()
    reader = cv2.VideoCapture(str(SAMPLE))
    fps = reader.get(cv2.CAP_PROP_FPS)
    ok, frame = reader.read()
    writer = cv2.VideoWriter(str(clips / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
    for _ in range(25):
        writer.write(frame)
        ok, frame = reader.read()
    writer.release()
    if folder:
        args = ["--video", str(clips), "--csv", str(tmp_path / "csv"), "--workers", "1"]
        csv = tmp_path / "csv" / "clip.csv"
    else:
        args = ["--video", str(clips / "clip.mp4"), "--csv", str(tmp_path / "clip.csv"), "--output", str(tmp_path / "clip.mp4")]
        csv = tmp_path / "clip.csv"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCKER)
    env = {**headless_env(), "PYTHONPATH": str(tmp_path / "site")}
    proc = subprocess.run([sys.executable, "run_tracker.py", *args, "--no-display", "--device", "auto"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(csv.read_text().splitlines()) > 20
