"""The `Tracker`: frame + timestamp in, faces (track id, box, 15 points) out.

Pipeline, as MediaPipe's face landmark graph closes its loop:
    detect (only to find new faces) -> Kaggle framing -> batched cascade -> points in the frame
    -> next frame's framing from these points -> One Euro smoothing.
While a face is tracked its crop comes from its last points, not from a fresh Haar box: that is what
keeps a still face still. The full-frame detector runs only to find new faces (every `detect_every`
frames, or every frame while nothing is tracked); a fresh detector box is tried from a few starting
framings, keeping the answer on which the model and its mirror image agree best (`_find`). Each
track is checked every `verify_every` frames: the Haar cascade must still see a face of the track's
size in a small upright patch cut from the track's own framing; a track that fails `max_misses`
checks in a row, or whose points stop looking like a face, is dropped. While faces are tracked, both
Haar passes run on a worker thread and their answers arrive a few frames later
(tracker/background.py); with nothing tracked, detection runs on the frame itself (from a camera,
`live`: on the worker, answered on the next frame).
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import (
    BOX_CENTER, BOX_SCALE, CROP_SIZE, MEAN_SHAPE, apply_affine, fit_similarity, framing_from_box, framing_transform,
    interocular, invert_affine,
)
from tracker.background import BackgroundJobs
from kaggle_framing.crop import to_gray, warp_crop
from tracker.haar_detector import HaarDetector
from tracker.keypoint_model import KeypointModel
from tracker.one_euro import OneEuroFilter
from kaggle_framing.weights_contract import DEFAULT_WEIGHTS

# A prediction is a face when, fitted onto the mean shape, its points sit within this RMS distance
# (crop pixels) of it, at a scale and angle a tracked face can have. Real faces score 1-5 px.
MAX_SHAPE_RESIDUAL = 9.0
SCALE_RANGE = (0.6, 1.6)
MAX_ROLL_DEGREES = 60.0
# A crop flatter than this (sd of its gray levels) holds no face: the face has left (real faces: 30-60).
MIN_CROP_CONTRAST = 6.0
# The track check's patch: VERIFY_PATCH square, the face's crop scaled to VERIFY_FACE pixels in it.
VERIFY_PATCH, VERIFY_FACE = 96, 60
# Frames between handing a Haar pass to the worker and using its answer. A file's frames come as fast
# as the main thread takes them (~2.5 ms on 2 cores), and a full-frame pass takes ~25 ms on the other
# core beside the video decoder: at 10 frames the main thread still waited for it (~0.3 ms a frame,
# 10-15% of the run's wall time), at 20 never. A camera's frames come every ~33 ms: 3 is plenty.
FILE_LAG, LIVE_LAG = 20, 3
# A track whose face size differs from the detector's box on it by more than this factor is reframed
# at the detector's size. Framing each crop from the last points has a failure mode: after a jolt
# (a fast start of motion) the crop can settle zoomed in on the inner face, where the model sees a
# face of the mean size again and keeps it there. Haar boxes vary by ~10% in size.
MAX_SCALE_DISAGREEMENT = 1.25
# Starting framings tried for each fresh detector box, shifts in crop pixels. A Haar box can sit a
# quarter of its width off the face (of two nested boxes on one face, the larger often frames the
# forehead), and from there the model, trained on shifts of a few pixels, settles on a wrong face:
# the brows taken for eyes (held-out images framed from their labels, then shifted: NME 0.049 at
# 16 px, 0.6 at 24). Of the starts, the one kept is the one where the model and its mirror image
# agree best (see _Found). Held-out images: NME 0.0488 -> 0.0461.
START_SHIFTS = ((0, 0), (0, -16), (0, 16), (-16, 0), (16, 0))
# The shifted starts are tried only where the box's own start leaves the model this unsure (crop px):
# right answers' disagreement is under it 9 times in 10, wrong ones' over it.
SURE_DISAGREEMENT = 1.1
# Face boxes that overlap more than this are one face: a detection on a tracked face, or two nested
# Haar boxes on a fresh one (of which the surest is kept).
SAME_FACE_IOU = 0.3


@dataclass
class Face:
    """One tracked face in one frame: `points` (15, 2) frame pixels (smoothed unless smoothing is
    off), `raw_points` straight from the model, `box` (x, y, w, h) in the detector's framing."""

    track_id: int
    box: np.ndarray
    points: np.ndarray
    raw_points: np.ndarray


@dataclass
class _Found:
    """A face found from a detector box: mean of the model's answers on its crop and on the mirrored
    crop, and how far apart those two answers are (mean over points, crop pixels; held-out images:
    0.7 px at the median for right answers, 2.2 for wrong ones)."""

    crop_points: np.ndarray
    points: np.ndarray  # frame pixels
    disagreement: float
    framing: np.ndarray  # fitted to `points`: the crop a track of this face starts from
    box: np.ndarray


@dataclass
class _Track:
    track_id: int
    framing: np.ndarray  # image -> crop transform for the next frame
    smoother: OneEuroFilter
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame, smoothed
    misses: int = 0  # face checks in a row that saw no face here
    age: int = 0  # frames tracked
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def box_from_framing(framing: np.ndarray) -> np.ndarray:
    """The detector-style box (x, y, w, h) that a crop framing corresponds to."""
    inverse = invert_affine(framing)
    cx, cy = apply_affine(inverse, np.array([CROP_SIZE / 2, CROP_SIZE / 2], np.float32))
    side = CROP_SIZE / float(np.sqrt(abs(np.linalg.det(framing[:, :2]))))
    w = side / BOX_SCALE
    return np.array([cx - BOX_CENTER[0] * w, cy - BOX_CENTER[1] * w, w, w], np.float32)


def rescaled(framing: np.ndarray, factor: float) -> np.ndarray:
    """The framing with the face drawn `factor` times as large, about the crop's centre."""
    out = framing * factor
    out[:, 2] += (1 - factor) * CROP_SIZE / 2
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def looks_like_face(crop_points: np.ndarray) -> bool:
    """Shape check of a prediction in crop pixels: close to the mean shape after a similarity fit, at
    a plausible scale and roll. A crop that has drifted off the face fails it."""
    if not np.isfinite(crop_points).all():
        return False
    m = fit_similarity(crop_points, MEAN_SHAPE, rotation=True)
    residual = np.sqrt(((apply_affine(m, crop_points) - MEAN_SHAPE) ** 2).sum(axis=-1).mean())
    (a, _, _), (b, _, _) = m.tolist()  # scalar maths on Python floats: numpy's is slower on one number
    scale = math.hypot(a, b)
    roll = abs(math.degrees(math.atan2(b, a)))
    return residual <= MAX_SHAPE_RESIDUAL and SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] and roll <= MAX_ROLL_DEGREES


class Tracker:
    """Construct once from weights and device; call `process(frame, timestamp)` per frame.

    `detect_every`: frames between full-frame detections while faces are tracked; `verify_every`:
    frames between the per-track face checks; `max_misses`: failed checks in a row before a track is
    dropped; `refine_passes`: extra model passes on a fresh detection, each reframed from the previous
    points (Haar boxes frame faces loosely); `detector_lag`: while faces are tracked, the detector
    runs on a worker thread and its answers are used this many frames later (see background.py;
    default: FILE_LAG, or LIVE_LAG from a camera); `live`: frames come from a camera, so with nothing
    tracked the search for faces runs on the worker too and is answered on the next frame: a frame
    without faces is drawn at once instead of after a ~25 ms full-frame pass (a file, where every
    frame's faces count, keeps searching in line).
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", smooth: bool = True,
                 max_faces: int = 10, detect_every: int = 30, verify_every: int = 10, max_misses: int = 2,
                 refine_passes: int = 1, detector: HaarDetector | None = None, detector_lag: int | None = None,
                 live: bool = False) -> None:
        if detector_lag is None:
            detector_lag = LIVE_LAG if live else FILE_LAG
        if detector_lag < 1:
            raise ValueError("detector_lag must be at least 1 frame")
        self.model = KeypointModel(weights, device)
        # The tracker spreads its work over its own threads (video decoder, detector worker, model);
        # OpenCV's thread pool on top puts detector work on the model's core and spins (2-core
        # machine, 2400-frame clip: system time 2.4 -> 1.0 s, wall time 12-13 -> 10.4-12 s).
        cv2.setNumThreads(1)
        self.detector = detector or HaarDetector()
        self.smooth, self.max_faces = smooth, max_faces
        self.detect_every, self.verify_every = detect_every, verify_every
        self.max_misses, self.refine_passes = max_misses, refine_passes
        self.detector_lag, self.live = detector_lag, live
        self.background = BackgroundJobs()
        self.timings: dict[str, float] = defaultdict(float)  # seconds per stage, summed
        self.faces_left_out = 0  # faces found but not followed, over max_faces (the smallest go)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new video, or unrelated images)."""
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.frame_index = 0
        self.background.clear()

    def close(self) -> None:
        """Stop the detector's worker thread."""
        self.background.close()

    def _timed(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.timings[stage] += now - start
        return now

    def _crops(self, gray: np.ndarray, framings: list[np.ndarray]) -> np.ndarray:
        t = time.perf_counter()
        crops = np.stack([warp_crop(gray, f) for f in framings])
        self._timed("crop", t)
        return crops

    def _predict(self, gray: np.ndarray, framings: list[np.ndarray]):
        """Crop pixels (N, 15, 2), frame pixels (N, 15, 2) and contrast (N,) of the faces under these framings."""
        crops = self._crops(gray, framings)
        contrast = np.array([cv2.meanStdDev(c)[1][0, 0] for c in crops])
        t = time.perf_counter()
        crop_points = self.model(crops)
        self._timed("model", t)
        frame_points = np.stack([apply_affine(invert_affine(f), p) for f, p in zip(framings, crop_points)])
        return crop_points, frame_points, contrast

    def _settle(self, gray: np.ndarray, boxes: list[np.ndarray], shifts: tuple, passes: int) -> list[_Found]:
        """For each box, the best of the answers from these starting shifts (see `_find`)."""
        starts = []
        for box in boxes:
            base = framing_from_box(*box)
            starts += [base + np.array([[0, 0, dx], [0, 0, dy]], np.float32) for dx, dy in shifts]
        _, points, _ = self._predict(gray, starts)
        for _ in range(passes):
            _, points, _ = self._predict(gray, [framing_transform(p, rotation=True) for p in points])
        framings = [framing_transform(p, rotation=True) for p in points]
        crops = self._crops(gray, framings)
        t = time.perf_counter()
        plain, mirrored = self.model.with_mirror(crops)
        self._timed("model", t)
        disagreement = np.linalg.norm(plain - mirrored, axis=-1).mean(axis=-1).reshape(len(boxes), -1)
        found = []
        for j in disagreement.argmin(axis=1) + np.arange(len(boxes)) * len(shifts):
            crop_points = (plain[j] + mirrored[j]) / 2
            points = apply_affine(invert_affine(framings[j]), crop_points)
            framing = framing_transform(points, rotation=True)
            found.append(_Found(crop_points, points, float(disagreement.flat[j]), framing, box_from_framing(framing)))
        return found

    def _find(self, gray: np.ndarray, boxes: np.ndarray | list[np.ndarray], passes: int) -> list[_Found]:
        """The faces in these detector boxes, one per box unless two boxes hold one face, in box order.
        Each box starts from its own framing, reframed from its own points `passes` times; where the
        model then disagrees with its mirror image by more than SURE_DISAGREEMENT, the other
        START_SHIFTS are tried too and the start with the least disagreement is kept."""
        boxes = list(boxes)
        found = self._settle(gray, boxes, START_SHIFTS[:1], passes) if boxes else []
        doubtful = [i for i, f in enumerate(found) if f.disagreement > SURE_DISAGREEMENT]
        if doubtful:
            retried = self._settle(gray, [boxes[i] for i in doubtful], START_SHIFTS[1:], passes)
            for i, f in zip(doubtful, retried):
                if f.disagreement < found[i].disagreement:
                    found[i] = f
        kept: list[_Found] = []
        for f in sorted(found, key=lambda f: f.disagreement):
            if all(iou(f.box, k.box) <= SAME_FACE_IOU for k in kept):
                kept.append(f)
        return [f for f in found if any(f is k for k in kept)]

    def _search(self, gray: np.ndarray, tracked: list[tuple[_Track, np.ndarray]]):
        """Detector pass (on the worker), returned with the tracks' boxes on the frame it searched."""
        return self.detector.detect(gray), tracked

    def _use_detections(self, gray: np.ndarray, boxes: np.ndarray,
                        tracked_then: list[tuple[_Track, np.ndarray]]) -> None:
        """Start tracks on the detector's boxes that no track covers, and reframe a track whose size
        the detector disagrees with. `tracked_then`: (track, box) on the frame the detector searched,
        which may be some frames back: a moving face is matched where it was then."""
        alive = [(track, box) for track, box in tracked_then if any(track is t for t in self.tracks)]
        tracked_now = [box_from_framing(tr.framing) for tr in self.tracks]
        fresh = []
        for b in boxes:
            match = max(alive, key=lambda tb: iou(b, tb[1]), default=None)
            if match is not None and iou(b, match[1]) >= SAME_FACE_IOU:
                track, then = match
                if not 1 / MAX_SCALE_DISAGREEMENT <= b[2] / then[2] <= MAX_SCALE_DISAGREEMENT:
                    track.framing = rescaled(track.framing, then[2] / b[2])
            elif all(iou(b, k) < SAME_FACE_IOU for k in tracked_now):
                fresh.append(b)
        self._start_tracks(gray, fresh)

    def _largest(self, found: list[_Found], room: int) -> list[_Found]:
        """The `room` largest of these faces (in their order), counting the others as left out."""
        if len(found) <= room:
            return found
        self.faces_left_out += len(found) - room
        keep = sorted(range(len(found)), key=lambda i: -found[i].box[2])[:room]
        return [found[i] for i in sorted(keep)]

    def _start_tracks(self, gray: np.ndarray, boxes: list[np.ndarray] | np.ndarray) -> None:
        """Start tracks on these detector boxes; where there is no room for all, on the largest of
        those that look like faces."""
        if len(boxes) == 0:
            return
        found = self._find(gray, boxes, self.refine_passes)
        room = max(self.max_faces - len(self.tracks), 0)
        if len(found) > room:
            found = [f for f in found if looks_like_face(f.crop_points)]
        for face in self._largest(found, room):
            self.tracks.append(_Track(self.next_id, face.framing, OneEuroFilter()))
            self.next_id += 1

    def _check_patch(self, gray: np.ndarray, track: _Track) -> np.ndarray:
        """The upright VERIFY_PATCH square patch of a track's face, the face VERIFY_FACE px wide in it."""
        matrix = rescaled(track.framing, VERIFY_FACE / CROP_SIZE)
        matrix[:, 2] += (VERIFY_PATCH - CROP_SIZE) / 2  # the crop's centre at the patch's centre
        return warp_crop(gray, matrix, VERIFY_PATCH)

    def process(self, frame: np.ndarray, timestamp: float, gray: np.ndarray | None = None) -> list[Face]:
        """Faces in this frame. `timestamp` in seconds drives the smoothing (any frame rate); `gray`:
        the frame already converted by `to_gray`, where the caller has it (the video decoder makes it)."""
        gray = to_gray(frame) if gray is None else gray
        due = self.frame_index + self.detector_lag
        for job, answer, seconds in self.background.collect(self.frame_index):
            self.timings["detect"] += seconds
            if job == "detect":
                self._use_detections(gray, *answer)
            else:  # a track's face check
                job.misses = 0 if answer else job.misses + 1
        for track in self.tracks:
            if track.age % self.verify_every == self.verify_every - 1:
                patch = self._check_patch(gray, track)
                self.background.submit(due, self.detector.contains_face, patch, VERIFY_FACE / BOX_SCALE, tag=track)
        self.tracks = [tr for tr in self.tracks if tr.misses < self.max_misses]
        if not self.tracks:  # nothing to follow: look for faces now
            if not self.live:  # on this frame
                t = time.perf_counter()
                boxes = self.detector.detect(gray)
                self._timed("detect", t)
                self._start_tracks(gray, boxes)
            elif not any(d <= self.frame_index + 1 for d in self.background.due_frames("detect")):
                self.background.submit(self.frame_index + 1, self._search, gray.copy(), [], tag="detect")
        elif self.frame_index % self.detect_every == 0:
            tracked = [(tr, box_from_framing(tr.framing)) for tr in self.tracks]
            self.background.submit(due, self._search, gray.copy(), tracked, tag="detect")
        self.frame_index += 1
        if not self.tracks:
            return []
        crop_points, points, contrast = self._predict(gray, [tr.framing for tr in self.tracks])
        t = time.perf_counter()
        faces, kept, kept_boxes = [], [], []
        for track, crop_p, p, c in zip(self.tracks, crop_points, points, contrast):
            if c < MIN_CROP_CONTRAST or not looks_like_face(crop_p):
                continue  # lost: the next detector round may find the face again
            if len(track.points):
                # Frame the next crop where the face will be, not where it was: at 8 px per frame
                # the face would otherwise sit off-centre and the points would trail it.
                track.velocity = 0.5 * track.velocity + 0.5 * (p - track.points).mean(axis=0)
            track.framing = framing_transform(p + track.velocity, rotation=True)
            box = box_from_framing(track.framing)
            box[:2] -= track.velocity  # this frame's box, not the next one's
            if any(iou(box, k) > 0.5 for k in kept_boxes):
                continue  # two tracks on one face: keep the older
            kept.append(track)
            kept_boxes.append(box)
            track.points = p
            track.age += 1
            shown = track.smoother(p, timestamp, float(interocular(p))) if self.smooth else p
            faces.append(Face(track.track_id, box, shown.astype(np.float32), p.astype(np.float32)))
        self.tracks = kept
        self._timed("smooth", t)
        return faces

    def process_image(self, image: np.ndarray) -> list[Face]:
        """Faces of a still image: fresh detection, framing refined from the model's own points."""
        self.reset()
        gray = to_gray(image)
        t = time.perf_counter()
        boxes = self.detector.detect(gray)
        self._timed("detect", t)
        if len(boxes) == 0:
            return []
        # Time is no object for a still image: one more reframing pass than for a new track.
        found = [f for f in self._find(gray, boxes, self.refine_passes + 1) if looks_like_face(f.crop_points)]
        return [Face(i, f.box, f.points, f.points) for i, f in enumerate(self._largest(found, self.max_faces))]
