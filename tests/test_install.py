"""`pip install .` gives a working project: the `tracker` and `train` packages, the shared contract
module, the shipped weights as package data and the `facial-keypoints` command, usable from any
folder. Installed into a fresh venv that sees this environment's packages (a .pth file naming its
site-packages: --system-site-packages would show the base interpreter's instead, where this one is
itself a venv), without dependencies or build isolation (--no-deps --no-build-isolation, so built with
this environment's setuptools, which requirements-dev.txt makes >= 70.1): offline and ~15 s."""
from __future__ import annotations

import csv
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import data, headless_env, require

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
OBAMAS = data("photos/obamas.jpg")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The venv's bin folder, after `pip install` of a copy of the repository (a copy, so that a
    build leaving files in its source folder would be seen, not left in the checkout)."""
    if not any(importlib.util.find_spec(name) for name in ("setuptools.command.bdist_wheel", "wheel")):
        pytest.skip("setuptools < 70.1 without `wheel` cannot build a wheel: pip install -r requirements-dev.txt")
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", "samples", "benchmark_plots", "docs"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    (Path(venv_site) / "this_environment.pth").write_text("\n".join(ours) + "\n")  # after the venv's own
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    left = [p.name for p in source.iterdir() if p.name == "build" or p.name.endswith(".egg-info")]
    assert not left, f"pip install . left {left} in the source folder"
    return venv / "bin"


def test_installed_modules_and_weights_come_from_the_venv(installed, tmp_path):
    code = ("import kaggle_framing, run_tracker, tracker.app.run, train.engine\n"
            "from kaggle_framing.weights_contract import DEFAULT_WEIGHTS\n"
            "from tracker.yunet_detector import MODEL\n"
            "print(kaggle_framing.__file__, tracker.app.run.__file__, train.engine.__file__, DEFAULT_WEIGHTS, MODEL,\n"
            "      MODEL.with_name('YUNET_LICENSE.txt'), DEFAULT_WEIGHTS.is_file() and MODEL.is_file()\n"
            "      and MODEL.with_name('YUNET_LICENSE.txt').is_file())")
    proc = subprocess.run([str(installed / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *files, found = proc.stdout.split()
    venv = installed.parent.resolve()
    assert all(Path(f).resolve().is_relative_to(venv) for f in files), files
    assert found == "True"  # the shipped weights, and the optional YuNet detector with its licence


def test_console_command_from_another_folder(installed, tmp_path):
    proc = subprocess.run([str(installed / "facial-keypoints"), "--image", str(require(OBAMAS)), "--csv", "-", "--no-display"],
                          cwd=tmp_path, env=headless_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(proc.stdout.splitlines()))
    assert rows[0][:7] == ["source", "frame", "face", "x", "y", "w", "h"] and len(rows) == 3, proc.stdout
    help_text = subprocess.run([str(installed / "facial-keypoints"), "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--camera" in help_text and "--max-faces" in help_text
