"""Faces at any tilt and turn: found rate and NME of every system by head tilt and by head turn.

    python -m benchmarks.tilt [--systems ours dlib mediapipe] [--faces 150] [--helen DIR|none] [--detector NAME]

Tilt (roll): held-out ytf68 photos (the identities `python -m train fit` never trains on), each turned
in-plane about its face's centre (the mean of its labelled points) by 0, +-15, +-30 and +-45 degrees:
the same image size, border pixels replicated, the labels moved by the same matrix. Every system sees
the turned photos as a folder (`--image`), and is scored per |angle| (+ and - pooled) with the page's
scorer; NME is also given over the upright photos' NME. Turn (yaw): HELEN's test photos (human labels)
binned by how far the nose tip sits off the eyes' midline, over the eye-corner distance (0 frontal,
~0.3 and over a head well turned); the default DIR is data/Face-alignement/helen/testset where it is.
`--detector NAME` runs ours with `run_tracker.py --detector NAME`. Time on 2 shared cores: tilt
about 2, 1 and 0.5 minutes (ours, dlib, MediaPipe), HELEN 3, 14 and 0.5.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from benchmarks.accuracy import Labelled, score, scored
from benchmarks.systems import ROOT, System
from kaggle_framing import KEYPOINT_NAMES, apply_affine, interocular

ANGLES = (0, 15, -15, 30, -30, 45, -45)  # degrees, counter-clockwise as seen
TILT_FACES = 150  # held-out photos turned (of 473), evenly spaced: 1050 images, a few minutes for all systems
YAW_BINS = (0.1, 0.2, 0.3)  # edges of the head-turn bins (nose offset over the eye-corner distance)
HELEN_DEFAULT = ROOT / "data" / "Face-alignement" / "helen" / "testset"  # where the README clones it
LEFT_EYE, RIGHT_EYE, NOSE = (KEYPOINT_NAMES.index(n) for n in ("left_eye_center", "right_eye_center", "nose_tip"))


# ---------------------------------------------------------------------------------------------
# Tilt: turned photos


def turn(image: np.ndarray, points: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """`image` turned by `degrees` (counter-clockwise as seen) about the mean of `points`, same size,
    border replicated; and `points` (..., 2) moved with it."""
    centre = points.reshape(-1, 2).mean(axis=0)
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    height, width = image.shape[:2]
    turned = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return turned, apply_affine(matrix, points)


def evenly(images: Labelled, count: int | None) -> Labelled:
    """`count` of `images`, evenly spaced through the list (all of them when None or fewer)."""
    if count is None or len(images) <= count:
        return list(images)
    return [images[i] for i in np.linspace(0, len(images) - 1, count).astype(int)]


def turned_photos(images: Labelled, folder: Path) -> tuple[Labelled, np.ndarray]:
    """Every image at every angle of ANGLES, written (PNG: no second JPEG loss) as numbered files in
    `folder`, and their labels; plus the (N,) angle of each."""
    folder.mkdir(parents=True, exist_ok=True)
    out, angles = [], []
    for path, truth in images:
        photo = cv2.imread(str(path))
        if photo is None:
            raise SystemExit(f"error: {path}: not a readable image")
        for degrees in ANGLES:
            image, points = turn(photo, truth, degrees)
            target = folder / f"{len(out):05d}.png"
            cv2.imwrite(str(target), image)
            out.append((target, points))
            angles.append(degrees)
    return out, np.array(angles)


def by_group(candidates: list[list[np.ndarray]], images: Labelled, groups: np.ndarray,
             names: list) -> dict:
    """`accuracy.scored` summaries of the images of each group (`groups[i]` the group of image i)."""
    out = {}
    for name in names:
        chosen = np.flatnonzero(groups == name)
        if len(chosen):
            out[name] = scored([candidates[i] for i in chosen], [images[i] for i in chosen])[0]
    return out


def by_angle(candidates: list[list[np.ndarray]], images: Labelled, angles: np.ndarray) -> dict[int, dict[str, float]]:
    """|angle| -> summary (+ and - pooled), and each one's NME over the upright photos' (`nme_vs_upright`)."""
    sizes = np.abs(angles)
    out = by_group(candidates, images, sizes, sorted(set(sizes.tolist())))
    upright = out.get(0, {}).get("nme_mean", np.nan)
    for summary in out.values():
        summary["nme_vs_upright"] = summary["nme_mean"] / upright if upright > 0 else np.nan
    return out


# ---------------------------------------------------------------------------------------------
# Turn: HELEN by head turn


def yaw(points: np.ndarray) -> np.ndarray:
    """A head-turn measure from (..., 15, 2) labels: the nose tip's offset from the eye centres'
    midpoint along the line through the eyes (so a tilted head does not count), over the eye-corner
    distance; unsigned."""
    left, right, nose = points[..., LEFT_EYE, :], points[..., RIGHT_EYE, :], points[..., NOSE, :]
    axis = (left - right) / np.linalg.norm(left - right, axis=-1, keepdims=True)
    return np.abs(((nose - (left + right) / 2) * axis).sum(axis=-1)) / interocular(points)


def yaw_bin_names() -> list[str]:
    edges = ["0", *(f"{e:g}" for e in YAW_BINS)]
    return [f"{a}-{b}" for a, b in zip(edges, edges[1:])] + [f">= {YAW_BINS[-1]:g}"]


def by_turn(errors: np.ndarray, images: Labelled) -> dict[str, dict[str, float]]:
    """Turn bin -> `accuracy.score` of the per-image NMEs `errors` (NaN: not found) of `images`."""
    names = yaw_bin_names()
    bins = np.digitize(yaw(np.stack([truth for _, truth in images])), YAW_BINS)
    out = {}
    for b, name in enumerate(names):
        chosen = errors[bins == b]
        if len(chosen):
            out[name] = score(chosen, int(np.isfinite(chosen).sum()), len(chosen))
    return out


# ---------------------------------------------------------------------------------------------
# Tables (this command's output and the page's)


def _num(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "-"


def tilt_table(tilt: dict[str, dict[int, dict[str, float]]]) -> list[str]:
    """system -> |angle| -> summary, as one markdown table: found, NME and NME over upright per angle."""
    angles = sorted({a for per in tilt.values() for a in per})
    header = ["system", *(f"{a} deg: found / NME / NME over upright" for a in angles)]
    rows = []
    for label, per in tilt.items():
        cells = [f"{_num(s['found'], '.1%')} / {_num(s['nme_mean'], '.4f')} / {_num(s['nme_vs_upright'], '.2f')}"
                 if (s := per.get(a)) else "" for a in angles]
        rows.append([label, *cells])
    return _table(header, rows)


def turn_table(turned: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """system -> turn bin -> summary: images, found and NME per bin."""
    names = [n for n in yaw_bin_names() if any(n in per for per in turned.values())]
    counts = {n: next(per[n]["images"] for per in turned.values() if n in per) for n in names}
    header = ["system", *(f"turn {n} ({counts[n]} photos): found / NME" for n in names)]
    rows = [[label, *(f"{_num(per[n]['found'], '.1%')} / {_num(per[n]['nme_mean'], '.4f')}" if n in per else ""
                      for n in names)] for label, per in turned.items()]
    return _table(header, rows)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


# ---------------------------------------------------------------------------------------------
# The command


def main(argv: list[str] | None = None) -> int:
    # Here, not at the top: benchmarks.sections imports this module for the page's section.
    from benchmarks import sections
    from benchmarks.accuracy import pts_images, ytf68_images
    from benchmarks.peers import VENVS
    from benchmarks.report import HELEN_SOURCE
    from benchmarks.systems import Results, mediapipe, ours, peer
    from kaggle_framing.keypoints68 import DataError

    choices = {"ours": lambda v: ours("cpu"), "dlib": lambda v: peer("dlib", v),
               "mediapipe": lambda v: mediapipe("learned", v), "mediapipe-vertices": lambda v: mediapipe("vertices", v)}
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", nargs="+", choices=choices, default=["ours", "dlib", "mediapipe"])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    ap.add_argument("--faces", type=int, default=TILT_FACES, help=f"held-out photos turned (default {TILT_FACES}; 0: all)")
    ap.add_argument("--helen", type=Path, metavar="DIR", help=f"HELEN's test set, for the head-turn table (default "
                    f"{HELEN_DEFAULT.relative_to(ROOT)} where it is; 'none': skip it): the helen/testset folder of {HELEN_SOURCE}")
    ap.add_argument("--detector", metavar="NAME", help="run ours with run_tracker.py --detector NAME")
    ap.add_argument("--venvs", type=Path, default=VENVS, help="the peers' venvs (default .venvs)")
    args = ap.parse_args(argv)
    helen_dir = args.helen or (HELEN_DEFAULT if HELEN_DEFAULT.is_dir() else None)
    if helen_dir is None:
        print(f"no head-turn table: HELEN's test set is not in {HELEN_DEFAULT} (--helen DIR)", file=sys.stderr)
    try:
        images = ytf68_images(args.data / "ytf68")
        helen = None if helen_dir is None or str(helen_dir) == "none" else pts_images(helen_dir)
    except (DataError, FileNotFoundError) as e:
        ap.error(str(e))
    systems = []
    for name in args.systems:
        system = choices[name](args.venvs)
        if name == "ours" and args.detector:
            system = ours("cpu", detector=args.detector)
        if system.missing:
            print(f"{system.label}: {system.missing}", file=sys.stderr)
        else:
            systems.append(system)
    results = Results()
    scale = replace(sections.FULL, tilt_faces=args.faces or None)
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as run_dir:
        for system in systems:  # one at a time, each in its own folder: timed apart
            folder = Path(run_dir) / system.key
            folder.mkdir()
            t = time.perf_counter()
            sections.tilt([system], images, scale, folder, results)
            seconds[system.label] = [time.perf_counter() - t]
            if helen:
                t = time.perf_counter()
                sections.accuracy([system], "helen", helen, scale, folder, results)
                seconds[system.label].append(time.perf_counter() - t)
    if helen:
        sections.turned(helen, scale, results)
    print("\n".join(["Tilt (in-plane), held-out ytf68:", "", *tilt_table(results.tilt), ""]))
    if results.turn:
        print("\n".join(["Turn (yaw), HELEN test:", "", *turn_table(results.turn), ""]))
    print(f"wall time (s), tilt ({len(images if scale.tilt_faces is None else evenly(images, scale.tilt_faces))} photos x "
          f"{len(ANGLES)} angles, photos written included)" + (f" and HELEN ({len(helen)} photos)" if helen else "") + ": "
          + "; ".join(f"{k} {' + '.join(f'{v:.0f}' for v in s)}" for k, s in seconds.items()))
    for label, note in results.notes.items():
        print(f"{label}: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", "Mean of empty slice")
    sys.exit(main())
