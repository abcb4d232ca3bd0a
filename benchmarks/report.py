"""BENCHMARKS.md and its plots from the measured `Results`."""
from __future__ import annotations

import datetime
import json
import os
import platform
from functools import partial
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import events as ev  # noqa: E402
from benchmarks import tilt as tl  # noqa: E402
from benchmarks.batch_throughput import section_of  # noqa: E402
from benchmarks.model_speed import cpu_name  # noqa: E402
from benchmarks.peers import MEDIAPIPE_MAPPING, PEERS  # noqa: E402
from benchmarks.sections import SPEED_SIZE, SPEED_SOURCE, STABILITY_SIDE, TRAJECTORY_POINT  # noqa: E402
from benchmarks.stability import NOISE, SETTLE, STEP  # noqa: E402
from benchmarks.systems import Accuracy, Results, System  # noqa: E402
from kaggle_framing import KEYPOINT_NAMES  # noqa: E402
from train.teacher import MAP_FILE as TEACHER_MAP  # noqa: E402

HELEN_SOURCE = "https://github.com/Spinkoo/Face-alignement"

PLOTS = "benchmark_plots"  # folder beside the page
NME_LIMIT = 0.10
_colors: dict[str, str] = {}


def color(label: str) -> str:
    """One colour per system across all plots, in the order systems first appear."""
    return _colors.setdefault(label, f"C{len(_colors) % 10}")


def machine(command: str, load: float, venvs: Path) -> list[str]:
    """The lines that say where and how the numbers were measured."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    versions = [f"Python {platform.python_version()}", f"torch {torch.__version__}", f"OpenCV {cv2.__version__}"]
    versions += [f"{p.version_module} {p.version(venvs)}" if p.installed(venvs) else f"{p.version_module} not installed"
                 for p in PEERS.values()]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"- Command: `{command}`",
        f"- Date: {now}",
        f"- CPU: {cpu_name()}, {os.cpu_count()} cores (load average {load:.2f} at the start)",
        f"- GPU: {gpu}",
        f"- Versions: {', '.join(versions)}",
    ]


def plot_ced(scored: Accuracy, path: Path, title: str) -> None:
    x = np.linspace(0, 0.15, 151)
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, errors in scored.errors.items():
        finite = np.nan_to_num(errors, nan=np.inf)
        ax.plot(x, [(finite <= v).mean() for v in x], label=label, color=color(label))
    ax.axvline(NME_LIMIT, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="NME (over the outer-eye-corner distance)", ylabel="share of images", ylim=(0, 1),
           title=f"Cumulative error distribution, {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fps(results: Results, path: Path) -> None:
    labels = list(results.fps)
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(labels) + 1.2))
    bars = ax.barh(labels[::-1], [results.fps[k] for k in labels[::-1]], color=[color(k) for k in labels[::-1]])
    ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
    ax.set(xlabel="frames per second, whole process (640x480)", title="End-to-end speed")
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_trajectory(results: Results, path: Path) -> None:
    """x of one keypoint over the stability clip (still, then moving), and its deviation from the truth."""
    truth = results.true_offsets
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(1, 1.3))
    top.plot(truth, "k--", lw=1.2, label="true motion")
    deviations = []
    for label, x in results.trajectories.items():
        top.plot(x, lw=1, label=label, color=color(label))
        bottom.plot(x - truth, lw=1, label=label, color=color(label))
        deviations.append(np.abs(x - truth))
    limit = 1.3 * max(1.0, float(np.nanpercentile(np.concatenate(deviations), 98))) if deviations else 1.0
    bottom.axhline(0, color="k", ls="--", lw=1.2)
    bottom.set_ylim(-limit, limit)
    top.set(ylabel="x - still position (px)",
            title=f"{KEYPOINT_NAMES[TRAJECTORY_POINT].replace('_', ' ')}: still face, then 8 px per frame")
    bottom.set(xlabel="frame (30 fps)", ylabel="x - true position (px)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def num(value: float, spec: str) -> str:
    """`value` formatted, or a dash where there is no number (e.g. no face was ever found)."""
    return format(value, spec) if np.isfinite(value) else "-"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def figure(plot, data, path: Path, caption: str) -> list[str]:
    """Draw `plot(data, path)` and return the page's lines showing it."""
    plot(data, path)
    return [f"![{caption}]({PLOTS}/{path.name})", ""]


def learned_map_lines() -> list[str]:
    if not TEACHER_MAP.exists():
        return ["The learned map is missing: `python -m train teacher-map` fits it."]
    with np.load(TEACHER_MAP) as saved:
        fitted, heldout = int(saved["fitted_on"]), float(saved["heldout_nme_single"])
    return [f"Learned map (`train/{TEACHER_MAP.name}`, made by `python -m train teacher-map`, the teacher of "
            "`python -m train pseudolabel`): each mesh is aligned (similarity, Procrustes) onto a reference mesh and "
            f"ridge regression takes it to the 15 points; fitted on {fitted} human-labelled faces (HELEN's training "
            f"set and AFW, 85% of their people), NME {heldout:.4f} on the held-out ones (single image; the accuracy section scores the whole peer, "
            "detection included)."]


def mapping_lines() -> list[str]:
    if not MEDIAPIPE_MAPPING.exists():
        return ["The MediaPipe mapping table is missing: `python -m benchmarks.mediapipe_mapping` chooses it."]
    m = json.loads(MEDIAPIPE_MAPPING.read_text())
    rows = [[n, ", ".join(map(str, m["vertices"][n])), f"{m['error'][n]:.4f}",
             ", ".join(map(str, m["anatomical_guess"][n])), f"{m['anatomical_error'][n]:.4f}"] for n in KEYPOINT_NAMES]
    made = f" Table: `benchmarks/peers/{MEDIAPIPE_MAPPING.name}`, made by `python -m benchmarks.mediapipe_mapping`."
    return ["Vertex table: " + m["how"] + made, "",
            *table(["Kaggle point", "mesh vertices (mean)", "error", "anatomical guess", "its error"], rows)]


def accuracy_table(scored: Accuracy | None, plot: Path, title: str) -> list[str]:
    """The found/NME/failure/AUC table of one image set, and its CED plot."""
    if scored is None:
        return []
    rows = [[k, str(v["images"]), num(v["found"], ".1%"), num(v["nme_mean"], ".4f"), num(v["nme_median"], ".4f"),
             num(v["failure"], ".1%"), num(v["auc"], ".3f"), num(v.get("point_offset", np.nan), ".4f"),
             f"{num(v.get('offset_x', np.nan), '+.2%')} / {num(v.get('offset_y', np.nan), '+.2%')}",
             num(v.get("nme_unbiased", np.nan), ".4f")] for k, v in scored.scores.items()]
    header = ["system", "images", "found", "NME mean", "NME median", "failure", f"AUC@{NME_LIMIT}", "point offset",
              "global offset x / y", "NME, offsets out"]
    lines = [*table(header, rows), ""]
    if scored.errors:
        lines += figure(partial(plot_ced, title=title), scored, plot, f"cumulative error distribution, {title}")
    return lines


SCORES = ("Found: a face was reported near the labelled one. NME: mean point error over the outer-eye-corner "
          f"distance, of found faces. Failure: NME > {NME_LIMIT} or not found. AUC of the cumulative error "
          f"distribution up to {NME_LIMIT}. Point offset: each point's mean error (faces turned upright, in "
          "eye-corner distances), its length averaged over the 15 points: how far a system's convention is from the "
          "labels', where NME adds the noise; global offset: the mean of those errors, the whole face shifted; NME, "
          "offsets out: the NME left with each point's mean error taken out. Points are scored in OpenCV's "
          "coordinates, 0-based pixel centres (iBUG labels count "
          "pixels from 1 and are converted when read: `kaggle_framing.keypoints68.IBUG_ORIGIN`).")


def accuracy_lines(results: Results, plots: Path) -> list[str]:
    lines = ["## Accuracy", "",
             "Still images of the ytf68 identities the shipped weights never saw (the validation split of "
             "`python -m train fit`: 15% of identities, seed 0), 68-point labels mapped to the 15 Kaggle points. These "
             "labels are machine-made, with a convention of their own (`train/ytf68_offsets.json`: the eyebrows' inner "
             "ends ~0.08 eye-corner distances further apart than people put them, the nose tip ~0.05 lower); they are "
             "scored as they are, so a system following human labels shows that as its point offset here. "
             + SCORES, ""]
    return lines + accuracy_table(results.accuracy.get("ytf68"), plots / "ced.png", "held-out identities")


def helen_lines(results: Results, plots: Path) -> list[str]:
    lines = ["## Accuracy on HELEN's test set", ""]
    if "helen" not in results.accuracy:
        return lines + [f"Not measured in this run: pass `--helen DIR`, DIR the `helen/testset` folder of a clone of "
                        f"{HELEN_SOURCE}.", ""]
    lines += ["HELEN's public test set (330 Flickr photos at full resolution, most over 1000 px a side, one "
              "labelled face each, others may be in the photo; human 68-point labels in the 300-W layout, `.pts` beside each image), mapped "
              "to the 15 Kaggle points as ytf68's labels are. It is kept out of every training source and of "
              "the MediaPipe maps' fitting; dlib's shape predictor, though, was trained on 300-W, HELEN's training set "
              "among it, so these labels are its home ground. Each system sees the whole photo (`--image`). "
              + SCORES, ""]
    return lines + accuracy_table(results.accuracy["helen"], plots / "ced_helen.png", "HELEN test set")


def tilt_lines(results: Results) -> list[str]:
    """Found and NME by head tilt (turned ytf68 photos) and by head turn (HELEN), every system."""
    if not results.tilt and not results.turn:
        return []
    lines = ["## Tilted and turned faces", ""]
    if results.tilt:
        faces = max(per[0]["images"] for per in results.tilt.values() if 0 in per)
        lines += [f"Tilt (`benchmarks/tilt.py`): {faces} of the held-out ytf68 photos of Accuracy (above), evenly spaced "
                  "through them, each turned in-plane about its face's centre (the mean of its labelled points) by "
                  f"{', '.join(f'{a:+d}' for a in tl.ANGLES if a)} degrees (same image size, border pixels replicated, "
                  "labels moved by the same matrix) and run through each system as one folder of images. Per |angle| "
                  "(+ and - pooled: twice the photos): found, NME of the found faces, and that NME over the upright "
                  "photos'. Scored as in Accuracy.", "", *tl.tilt_table(results.tilt), ""]
    if results.turn:
        lines += ["Turn: HELEN's test photos (human labels; the HELEN accuracy run, above) binned by head turn, the "
                  "nose tip's offset from the eyes' midpoint along the line through the eyes, over the eye-corner "
                  "distance (0: frontal; 0.3 and over: well turned). Found and NME per bin.", "",
                  *tl.turn_table(results.turn), ""]
    return lines


def speed_lines(results: Results, plots: Path) -> list[str]:
    lines = ["## Speed", "",
             f"A {SPEED_SIZE[0]}x{SPEED_SIZE[1]} clip (`{SPEED_SOURCE}` of the shared data, resized and looped to "
             f"{results.speed_frames} frames) through each system's command line, CSV written, no display. "
             "FPS = frames / wall time of the whole process, startup (imports, model loading) included. "
             "The systems take turns; each one's median run is its FPS (all runs listed: this machine is "
             "shared, and one command's speed varies run to run); the ratio that counts is between "
             "systems in the same rounds.", ""]
    lines += [*table(["system", "FPS (median)", "runs"],
                     [[k, f"{v:.1f}", ", ".join(f"{r:.0f}" for r in results.fps_runs.get(k, []))]
                      for k, v in results.fps.items()]), ""]
    for label, stages in results.stages.items():
        lines += [f"{label}, `run_tracker.py --profile`, mean ms per frame (median over the runs): "
                  + ", ".join(f"{s} {ms:.2f}" for s, ms in stages.items()), ""]
    if results.fps:
        lines += figure(plot_fps, results, plots / "fps.png", "frames per second")
    return lines


def stability_lines(results: Results, plots: Path) -> list[str]:
    lines = ["## Stability", "",
             f"`benchmarks/stability.py`'s synthetic clips, joined into one video: a face photo ({STABILITY_SIDE} px "
             "square; MediaPipe finds no face at that script's 160 px) on a 640x480 gray background with sensor "
             f"noise (sd {NOISE:g}), still, then sliding {STEP} px per frame. Jitter: RMS frame-to-frame movement of "
             f"the points on the still part, in px (first {SETTLE} frames left out). Lag: how far the points trail "
             f"the true motion, in frames; followed: share of moving-part frames with mean error under {3 * STEP} px. "
             "Each system's truth is its own mean still-face position moved with the face; where a system "
             "reports several faces, the one nearest the photo counts.", ""]
    rows = [[k, num(v["still_found"], ".0%"), num(v["jitter_px"], ".3f"), num(v["lag_frames"], ".2f"),
             num(v["followed"], ".1%")] for k, v in results.stability.items()]
    lines += [*table(["system", "still face found", "jitter (px)", "lag (frames)", "followed"], rows), ""]
    if results.trajectories:
        lines += figure(plot_trajectory, results, plots / "trajectory.png", "keypoint trajectory")
    return lines


MEDIAPIPE = ("`benchmarks/peers/mediapipe_tracker.py`: legacy `mp.solutions.face_mesh` with `refine_landmarks=True` "
             "(478 points), tracking mode on video, static on images, one face; its points mapped to the 15 by ")
ABOUT = {
    "ours": "`run_tracker.py`: Haar detection, tracking from the points, cascaded CNN, One Euro smoothing.",
    "dlib": "`benchmarks/peers/dlib_tracker.py`: dlib's HOG detector (frames upsampled once, face_recognition's "
            "default) and its 68-point shape predictor (`face_recognition_models`), mapped to Kaggle-15 as the "
            "labels are; every frame detected afresh.",
    "mediapipe-learned": MEDIAPIPE + "the learned map (`--mapping learned`, below).",
    "mediapipe-vertices": MEDIAPIPE + "the vertex table (`--mapping vertices`, below).",
    "floor": "`benchmarks/peers/floor_tracker.py`: the tracker's Haar box with the Kaggle mean shape placed in it "
             "(`HaarDetector.framing_from_box`); no model.",
}


def events_lines(results: Results) -> list[str]:
    """Faces coming and going (benchmarks/events.py): one table per system, and the totals side by side."""
    if not results.events:
        return []
    lines = ["## Faces coming and going", "",
             f"{len(ev.EVENTS)} 640x480 30 fps clips of 150 frames composed by `benchmarks/events.py` from held-out "
             "ytf68 faces pasted over drawn rooms, with the truth of every frame: a scene cut, a second face walking "
             "in, two faces crossing (the nearer hides the other), a face swinging at 31 px a frame, a face leaving "
             "and coming back, heads tilted 15 and 30 degrees (two in view from the start, a third walking in). "
             "Each clip runs through each system's command line as a video. Rows on no face: rows "
             "whose points' centre is in no visible face's box. Pickup: frames from a face's appearance to its "
             "first row. Coverage: share of visible face-frames (from 10 frames after each appearance) with a "
             "row on that face. Id changes: a face's rows changing track id, or an id moving to another face. "
             "Bars (issue 15): rows on no face <= 1%, pickup <= 6 frames, coverage >= 97% in every clip, "
             "<= 3 id changes in all.", ""]
    rows = []
    for label, scores in results.events.items():
        t = ev.totals(scores)
        pickup = "never" if np.isinf(t["pickup"]) else f"{t['pickup']:.0f}"
        rows.append([label, f"{sum(s.rows for s in scores)}", f"{t['off_face']:.1%}", pickup,
                     f"{t['coverage']:.1%}", f"{t['id_changes']}"])
    lines += table(["system", "rows", "rows on no face", "worst pickup (frames)", "worst coverage", "id changes"], rows)
    for label, scores in results.events.items():
        lines += ["", f"{label}:", "", ev.table(scores)]
    return lines + [""]


def systems_lines(results: Results, systems: list[System]) -> list[str]:
    lines = ["## Systems", ""]
    for s in systems:
        status = f" **{results.notes[s.label]}**" if s.label in results.notes else ""
        lines.append(f"- {s.label}: {ABOUT.get(s.key) or ABOUT[s.key.split('-')[0]]}{status}")
    failures = [f"- {k}: {v}" for k, v in results.notes.items() if k not in {s.label for s in systems}]
    lines += ["", *(["Runs that failed:", "", *failures, ""] if failures else [])]
    return lines + ["### MediaPipe's 478 points to the 15 Kaggle ones", "", *learned_map_lines(), "",
                    *mapping_lines(), ""]


def write_page(output: Path, results: Results, systems: list[System], command: str, load: float, venvs: Path,
               quick: bool) -> None:
    plots = output.parent / PLOTS
    plots.mkdir(exist_ok=True)
    lines = ["# Benchmarks", ""]
    if quick:
        lines += ["**Quick run (`--quick`): a few frames and images, a smoke test, not numbers to quote.**", ""]
    lines += ["Measured in one run of one command on this machine; rerun it to regenerate this page and its plots.",
              "", *machine(command, load, venvs), ""]
    lines += helen_lines(results, plots) + accuracy_lines(results, plots)  # human labels first: they are the truth
    lines += tilt_lines(results)
    lines += speed_lines(results, plots) + stability_lines(results, plots) + events_lines(results)
    # The folder-run section is measured by its own command (benchmarks/batch_throughput.py): kept as it is.
    kept = section_of(output.read_text()) if output.exists() else ""
    output.write_text("\n".join(lines + systems_lines(results, systems) + ([kept] if kept else [])))
