"""Faces coming and going: six composed clips with known truth, and how a tracker's rows score on them.

    python -m benchmarks.events [--weights weights/cascade.pt] [--ytf68 ../shared/data/ytf68] [--save DIR]

Each clip is 640x480 at 30 fps: ytf68 faces of identities the shipped weights never saw (cut out
with an oval around their 68 labelled points, which give the truth) pasted over a drawn room, with
sensor noise. The events:

- cut: one face, then the scene changes wholesale to another room with another face in it;
- walk_in: a second face slides in from the right while one is tracked;
- crossing: two faces pass each other, the right one in front, hiding most of the other;
- pan: the camera swings across a face at 31 px per frame, turning back every 13 frames;
- leave_return: a face walks out of the frame, stays out a second, and walks back in;
- tilted: heads tilted in-plane, 15 degrees one way and 30 the other, in view from the first frame,
  and a third at 15 degrees walking in from the right.

A face is in view on a frame when at least VISIBLE of its cut-out is inside the frame and not hidden
by a face in front; it *appears* at the first frame of each stretch in view. A row is on a face when
its points' centre lies inside that face's box (the Kaggle-framing square of its true points) on a
frame where some of the face shows. Scores: rows on no face (% of all rows); pickup delay of each
appearance (frames until a row is on it); coverage (share of in-view face-frames, from COVERAGE_FROM
frames after each appearance, that have a row on that face); id changes (per face, track ids beyond
its first, plus per track id, faces beyond its first: a track handed from one face to another).
Bars: rows on no face <= 1%, every pickup <= 6 frames, coverage >= 97% in every clip, <= 3 id
changes in all the clips.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kaggle_framing import KEYPOINT_NAMES, framing_transform, interocular, kaggle_from_ibug68
from tracker import Tracker
from tracker.haar_detector import HaarDetector

SIZE, FPS, LENGTH = (640, 480), 30.0, 150  # frame width, height; frames per second; frames per clip
VISIBLE = 0.8  # share of a face's cut-out that must show for it to be in view
COVERAGE_FROM = 10  # frames after an appearance from which coverage counts
BARS = {"off_face": 0.01, "pickup": 6, "coverage": 0.97, "id_changes": 3}
NOISE = 3.0  # sd of the sensor noise, gray levels
# Identities of the validation split (`python -m train fit`: 15% of identities, seed 0) with large
# faces, so that they are not upscaled much.
FACES = ("training/Tessa_Jowell_52.jpg", "training/Charlize_Theron_50.jpg", "training/Jackie_Sherrill_50.jpg",
         "training/Agbani_Darego_42.jpg", "training/Abdel_Aziz_Al-Hakim_00.jpg", "training/Queen_Rania_50.jpg",
         "training/George_Karl_51.jpg", "training/Laura_Bush_40.jpg")
EVENTS = ("cut", "walk_in", "crossing", "pan", "leave_return", "tilted")


# ---------------------------------------------------------------------------------------------
# Composing


@dataclass
class Sprite:
    """A face cut out of a photo: BGR pixels, alpha in [0, 1], its 15 true points in sprite pixels."""

    image: np.ndarray
    alpha: np.ndarray
    points: np.ndarray


def load_sprite(root: Path, name: str, eye_distance: float, tilt: float = 0.0) -> Sprite:
    """The face of ytf68 image `name`, scaled to this interocular distance (px), cut out with a soft
    oval around its 68 labelled points reaching up over the forehead; turned in-plane by `tilt`
    degrees (counter-clockwise as seen, as cv2.getRotationMatrix2D), the oval with it."""
    table = pd.read_csv(root / "keypoints68.csv")
    row = table[table["image"] == name]
    if row.empty:
        raise SystemExit(f"error: {name}: not in {root / 'keypoints68.csv'}")
    points68 = row.iloc[0, 2:].to_numpy(np.float32).reshape(68, 2)
    photo = cv2.imread(str(root / "images" / name))
    if photo is None:
        raise SystemExit(f"error: {root / 'images' / name}: not a readable image")
    scale = eye_distance / float(interocular(kaggle_from_ibug68(points68)))
    (x0, y0), (x1, y1) = points68.min(axis=0), points68.max(axis=0)
    centre = np.array([(x0 + x1) / 2, y0 + 0.4 * (y1 - y0)])  # up from the middle: the forehead
    axes = np.array([0.62 * (x1 - x0), 0.78 * (y1 - y0)]) * scale
    cos, sin = np.cos(np.radians(tilt)), np.sin(np.radians(tilt))
    a, b = axes
    reach = np.array([np.hypot(a * cos, b * sin), np.hypot(a * sin, b * cos)]) if tilt else axes  # the oval's half-box
    side = np.ceil(2 * reach + 8).astype(int)
    unit = np.array([[cos, sin], [-sin, cos]])
    # The points are float32, and turned as float32: upright sprites are the same to the bit as before tilts.
    matrix = np.hstack([scale * unit, (side / 2 - scale * (unit.astype(np.float32) @ centre))[:, None]])
    image = cv2.warpAffine(photo, matrix, (int(side[0]), int(side[1])), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    alpha = np.zeros(image.shape[:2], np.float32)
    cv2.ellipse(alpha, (int(side[0] // 2), int(side[1] // 2)), tuple(int(a) for a in axes), -tilt, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.04 * axes[0])
    points = kaggle_from_ibug68(points68) @ unit.T.astype(np.float32) * scale + matrix[:, 2]
    return Sprite(image.astype(np.float32), alpha, points.astype(np.float32))


def room(seed: int, width: int = SIZE[0], height: int = SIZE[1]) -> np.ndarray:
    """A drawn room: a shaded wall, a floor, a window, a shelf of books, a picture, a plant's leaves."""
    rng = np.random.default_rng(seed)
    wall = rng.uniform(90, 200, 3)
    shade = np.linspace(0.8, 1.1, height)[:, None, None] * np.linspace(1.05, 0.85, width)[None, :, None]
    image = (wall * shade).astype(np.float32)
    floor = int(height * rng.uniform(0.72, 0.82))
    image[floor:] = rng.uniform(40, 120, 3)
    for x in range(0, width, int(rng.integers(30, 60))):  # floorboards
        cv2.line(image, (x, floor), (x + int(rng.integers(-80, 80)), height), tuple(rng.uniform(20, 60, 3).tolist()), 2)
    for _ in range(int(rng.integers(2, 4))):  # windows and pictures
        w, h = int(rng.integers(80, 200)), int(rng.integers(60, 160))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(10, max(11, floor - h - 40)))
        cv2.rectangle(image, (x, y), (x + w, y + h), tuple(rng.uniform(150, 255, 3).tolist()), -1)
        cv2.rectangle(image, (x, y), (x + w, y + h), tuple(rng.uniform(20, 80, 3).tolist()), 6)
        cv2.line(image, (x + w // 2, y), (x + w // 2, y + h), tuple(rng.uniform(20, 80, 3).tolist()), 4)
    x = int(rng.integers(0, width - 160))  # a shelf of books
    for shelf_y in (floor - 200, floor - 110):
        cv2.rectangle(image, (x, shelf_y + 70), (x + 160, shelf_y + 80), (40, 60, 90), -1)
        bx = x
        while bx < x + 150:
            bw = int(rng.integers(8, 18))
            cv2.rectangle(image, (bx, shelf_y + int(rng.integers(5, 25))), (bx + bw, shelf_y + 70),
                          tuple(rng.uniform(20, 230, 3).tolist()), -1)
            bx += bw + 1
    for _ in range(12):  # leaves
        centre = (int(rng.integers(0, width)), int(rng.integers(floor - 120, floor)))
        cv2.ellipse(image, centre, (int(rng.integers(10, 30)), int(rng.integers(4, 10))), float(rng.uniform(0, 180)),
                    0, 360, (40, float(rng.uniform(90, 160)), 50), -1)
    texture = cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32), (0, 0), 1.5)
    return np.clip(image + texture[..., None], 0, 255).astype(np.float32)


@dataclass
class Actor:
    """A face and where its points' centre is on each frame (NaN: not in the scene)."""

    sprite: Sprite
    centres: np.ndarray  # (T, 2) frame pixels


@dataclass
class EventClip:
    """A composed clip: `frames()` renders it; `points` (T, F, 15, 2) and `visible` (T, F) are the
    truth (F faces, back to front; points NaN where a face is not in the scene)."""

    name: str
    rooms: list[np.ndarray]
    room_of: np.ndarray  # (T,) which room each frame shows
    view_x: np.ndarray  # (T,) left edge of the view into the room (a pan)
    actors: list[Actor]
    seed: int

    def __post_init__(self) -> None:
        self.points = np.stack([a.centres[:, None] + a.sprite.points[None] - a.sprite.points.mean(0) for a in self.actors], 1)
        self.visible = np.stack([self._shown(i) for i in range(len(self))])
        self.boxes = face_boxes(self.points)

    def __len__(self) -> int:
        return len(self.room_of)

    def _placed(self, i: int) -> Iterator[tuple[int, Sprite, int, int]]:
        for f, actor in enumerate(self.actors):
            if np.isfinite(actor.centres[i]).all():
                corner = actor.centres[i] - actor.sprite.points.mean(axis=0)
                yield f, actor.sprite, int(round(corner[0])), int(round(corner[1]))

    def _shown(self, i: int) -> np.ndarray:
        """(F,) share of each face's cut-out inside the frame and not behind a face in front."""
        shown = np.zeros(len(self.actors))
        cover = np.zeros((SIZE[1], SIZE[0]), np.float32)  # alpha of the faces in front so far
        for f, sprite, x, y in reversed(list(self._placed(i))):
            inside, src = _overlap(sprite.alpha.shape, x, y)
            if inside is None:
                continue
            alpha = sprite.alpha[src]
            shown[f] = float((alpha * (1 - cover[inside])).sum() / sprite.alpha.sum())
            cover[inside] = np.maximum(cover[inside], alpha)
        return shown

    def frames(self) -> Iterator[np.ndarray]:
        """The clip's BGR frames, rendered one at a time."""
        rng = np.random.default_rng(self.seed)
        noise = [rng.normal(0, NOISE, (SIZE[1], SIZE[0], 3)).astype(np.float32) for _ in range(8)]
        for i in range(len(self)):
            x = int(self.view_x[i])
            frame = self.rooms[self.room_of[i]][:, x : x + SIZE[0]].copy()
            for _, sprite, fx, fy in self._placed(i):
                inside, src = _overlap(sprite.alpha.shape, fx, fy)
                if inside is not None:
                    a = sprite.alpha[src][..., None]
                    frame[inside] = a * sprite.image[src] + (1 - a) * frame[inside]
            yield np.clip(frame + noise[i % len(noise)], 0, 255).astype(np.uint8)


def _overlap(shape: tuple[int, int], x: int, y: int):
    """Slices of the frame and of a sprite of `shape` placed with its corner at (x, y); (None, None)
    when it is wholly outside."""
    h, w = shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, SIZE[0]), min(y + h, SIZE[1])
    if x0 >= x1 or y0 >= y1:
        return None, None
    return np.s_[y0:y1, x0:x1], np.s_[y0 - y:y1 - y, x0 - x:x1 - x]


def face_boxes(points: np.ndarray) -> np.ndarray:
    """(..., 4) x, y, w, h: the Kaggle-framing square of each (15, 2) point set (NaN where NaN)."""
    flat = points.reshape(-1, len(KEYPOINT_NAMES), 2)
    boxes = np.full((len(flat), 4), np.nan)
    for i, p in enumerate(flat):
        if np.isfinite(p).all():
            boxes[i] = HaarDetector.box_from_framing(framing_transform(p))
    return boxes.reshape(points.shape[:-2] + (4,))


def _still(x: float, y: float, frames: int = LENGTH, sway: float = 6.0, period: float = 90.0) -> np.ndarray:
    """A face standing at (x, y), swaying a little as people do."""
    t = np.arange(frames)
    return np.stack([x + sway * np.sin(2 * np.pi * t / period), y + 0.5 * sway * np.sin(2 * np.pi * t / (1.3 * period))], 1)


def _absent(centres: np.ndarray, frames: slice) -> np.ndarray:
    centres = centres.copy()
    centres[frames] = np.nan
    return centres


def _walk(points: list[tuple[int, float, float]], frames: int = LENGTH) -> np.ndarray:
    """Centres through these (frame, x, y) waypoints, straight lines between, held before and after."""
    t = np.arange(frames)
    f, x, y = (np.array(v, np.float64) for v in zip(*points))
    return np.stack([np.interp(t, f, x), np.interp(t, f, y)], 1)


def compose(name: str, root: Path) -> EventClip:
    """One of the EVENTS clips, from the ytf68 folder at `root`."""
    def face(i: int, eye_distance: float, tilt: float = 0.0) -> Sprite:
        return load_sprite(root, FACES[i], eye_distance, tilt)

    t = np.arange(LENGTH)
    still_view = np.zeros(LENGTH, int)
    one_room = np.zeros(LENGTH, int)
    if name == "cut":
        cut = 75
        a = Actor(face(0, 50), _absent(_still(230, 220), np.s_[cut:]))
        b = Actor(face(1, 46), _absent(_still(430, 250), np.s_[:cut]))
        return EventClip(name, [room(1), room(2)], (t >= cut).astype(int), still_view, [a, b], seed=1)
    if name == "walk_in":
        a = Actor(face(2, 46), _still(180, 230))
        b = Actor(face(3, 44), _walk([(30, 720, 250), (75, 460, 250)]))
        return EventClip(name, [room(3)], one_room, still_view, [a, b], seed=2)
    if name == "crossing":
        behind = Actor(face(4, 44), _walk([(25, 130, 240), (125, 510, 240)]))
        front = Actor(face(5, 54), _walk([(25, 510, 250), (125, 130, 250)]))  # nearer the camera
        return EventClip(name, [room(4)], one_room, still_view, [behind, front], seed=3)
    if name == "pan":
        # The view swings from side to side at 31 px per frame, turning back every 13 frames.
        speed, reach = 31, 400
        view = np.abs((speed * t) % (2 * reach) - reach)
        centres = np.stack([320 + reach / 2 - view, np.full(LENGTH, 240.0)], 1)
        return EventClip(name, [room(5, SIZE[0] + reach)], one_room, view, [Actor(face(6, 48), centres)], seed=4)
    if name == "leave_return":
        path = _walk([(20, 320, 240), (70, -120, 240), (100, -120, 240), (150, 280, 240)])
        return EventClip(name, [room(6)], one_room, still_view, [Actor(face(7, 48), path)], seed=5)
    if name == "tilted":
        # Heads tilted as people hold them: two in view from the first frame (15 degrees one way, 30
        # the other), a third walking in at 15 degrees.
        a = Actor(face(1, 48, 15), _still(130, 235))
        b = Actor(face(6, 46, -30), _still(320, 250))
        c = Actor(face(3, 44, -15), _walk([(30, 730, 240), (75, 515, 240)]))
        return EventClip(name, [room(7)], one_room, still_view, [a, b, c], seed=6)
    raise ValueError(f"unknown event {name!r} (one of {', '.join(EVENTS)})")


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Rows:
    """A tracker's CSV rows: frame index, track id and (15, 2) points of each."""

    frame: np.ndarray
    track: np.ndarray
    points: np.ndarray

    @staticmethod
    def of(rows: Iterable[tuple[int, int, np.ndarray]]) -> "Rows":
        rows = list(rows)
        if not rows:
            return Rows(np.zeros(0, int), np.zeros(0, int), np.zeros((0, len(KEYPOINT_NAMES), 2)))
        frame, track, points = zip(*rows)
        return Rows(np.array(frame, int), np.array(track, int), np.stack(points).astype(np.float64))

    @staticmethod
    def from_csv(path: str | Path) -> "Rows":
        """The rows of a `run_tracker.py --csv` file (any system writing that format)."""
        table = pd.read_csv(path)
        columns = [f"{n}_{a}" for n in KEYPOINT_NAMES for a in "xy"]
        points = table[columns].to_numpy(np.float64).reshape(-1, len(KEYPOINT_NAMES), 2)
        return Rows(table["frame"].to_numpy(int), table["face"].to_numpy(int), points)


def faces_of_rows(clip: EventClip, rows: Rows) -> np.ndarray:
    """(N,) the face each row is on (-1: none): the showing face nearest the row's centre whose box
    holds that centre."""
    out = np.full(len(rows.frame), -1)
    for n, (i, p) in enumerate(zip(rows.frame, rows.points)):
        if not 0 <= i < len(clip):
            continue
        centre = p.mean(axis=0)
        best = np.inf
        for f, box in enumerate(clip.boxes[i]):
            if clip.visible[i, f] <= 0 or not (box[0] <= centre[0] <= box[0] + box[2] and box[1] <= centre[1] <= box[1] + box[3]):
                continue
            d = np.linalg.norm(centre - clip.points[i, f].mean(axis=0))
            if d < best:
                best, out[n] = d, f
    return out


def appearances(visible: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each stretch of frames in view, for one face's (T,) visible shares."""
    shown = np.concatenate([[False], visible >= VISIBLE, [False]])
    edges = np.flatnonzero(np.diff(shown.astype(int)))
    return list(zip(edges[::2], edges[1::2]))


@dataclass
class EventScore:
    name: str
    rows: int
    off_face: int  # rows on no face
    pickups: list[float]  # frames from each appearance to the first row on that face (inf: never)
    covered: int  # in-view face-frames (from COVERAGE_FROM frames after an appearance) with a row on that face
    counted: int  # ... of these face-frames
    id_changes: int
    error: float  # mean point error of the rows on faces, over the face's interocular distance

    @property
    def off_share(self) -> float:
        return self.off_face / self.rows if self.rows else 0.0

    @property
    def coverage(self) -> float:
        return self.covered / self.counted if self.counted else 1.0


def score(clip: EventClip, rows: Rows) -> EventScore:
    on = faces_of_rows(clip, rows)
    pickups, covered, counted = [], 0, 0
    for f in range(len(clip.actors)):
        frames_on = np.zeros(len(clip), bool)
        frames_on[rows.frame[on == f]] = True
        for start, end in appearances(clip.visible[:, f]):
            hits = np.flatnonzero(frames_on[start:end])
            pickups.append(float(hits[0]) if len(hits) else np.inf)
            counted += max(0, end - start - COVERAGE_FROM)
            covered += int(frames_on[start + COVERAGE_FROM : end].sum())
    changes = 0
    for f in range(len(clip.actors)):
        changes += max(0, len(np.unique(rows.track[on == f])) - 1)
    for track in np.unique(rows.track[on >= 0]):
        changes += len(np.unique(on[(rows.track == track) & (on >= 0)])) - 1
    errors = []
    for n in np.flatnonzero(on >= 0):
        truth = clip.points[rows.frame[n], on[n]]
        errors.append(np.linalg.norm(rows.points[n] - truth, axis=-1).mean() / interocular(truth))
    return EventScore(clip.name, len(on), int((on < 0).sum()), pickups, covered, counted, changes,
                      float(np.mean(errors)) if errors else float("nan"))


def track_clip(tracker, clip: EventClip) -> Rows:
    """Our tracker's rows on a clip, run in this process as `run_tracker.py --video` would run it."""
    tracker.reset()
    rows = []
    for i, frame in enumerate(clip.frames()):
        for face in tracker.process(frame, i / FPS):
            rows.append((i, face.track_id, face.points))
    return Rows.of(rows)


def write_clip(clip: EventClip, path: Path) -> Path:
    """The clip as a video file (for systems that run as their own command)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for frame in clip.frames():
        writer.write(frame)
    writer.release()
    return path


# ---------------------------------------------------------------------------------------------
# The table


def table(scores: list[EventScore]) -> str:
    lines = ["| event | rows | rows on no face | pickup (frames) | coverage | id changes | error (NME) |",
             "|---|---|---|---|---|---|---|"]
    for s in scores:
        pickups = ", ".join("never" if np.isinf(p) else f"{p:.0f}" for p in s.pickups)
        lines.append(f"| {s.name} | {s.rows} | {s.off_share:.1%} | {pickups} | {s.coverage:.1%} | {s.id_changes} | {s.error:.3f} |")
    lines.append(totals_line(scores))
    return "\n".join(lines)


def totals(scores: list[EventScore]) -> dict[str, float]:
    rows = sum(s.rows for s in scores)
    return {"off_face": sum(s.off_face for s in scores) / rows if rows else 0.0,
            "pickup": max((p for s in scores for p in s.pickups), default=0.0),
            "coverage": min(s.coverage for s in scores),
            "id_changes": sum(s.id_changes for s in scores)}


def totals_line(scores: list[EventScore]) -> str:
    t = totals(scores)
    pickup = "never" if np.isinf(t["pickup"]) else f"{t['pickup']:.0f}"
    return (f"| all (bars: <= {BARS['off_face']:.0%}, <= {BARS['pickup']}, >= {BARS['coverage']:.0%} worst, "
            f"<= {BARS['id_changes']}) | {sum(s.rows for s in scores)} | {t['off_face']:.1%} | {pickup} worst | "
            f"{t['coverage']:.1%} worst | {t['id_changes']} | |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/cascade.pt")
    ap.add_argument("--ytf68", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/ytf68")
    ap.add_argument("--events", nargs="+", default=list(EVENTS), choices=EVENTS)
    ap.add_argument("--save", type=Path, help="also write each clip as DIR/<event>.mp4")
    args = ap.parse_args(argv)
    tracker = Tracker(args.weights, "cpu")
    scores = []
    try:
        for name in args.events:
            clip = compose(name, args.ytf68)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                write_clip(clip, args.save / f"{name}.mp4")
            t = time.perf_counter()
            scores.append(score(clip, track_clip(tracker, clip)))
            print(f"{name}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    finally:
        tracker.close()
    print(table(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
