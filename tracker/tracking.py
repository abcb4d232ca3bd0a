"""The `Tracker`: frame + timestamp in, faces (track id, box, 15 points) out.

Pipeline, as MediaPipe's face landmark graph closes its loop:
    detect (only to find new faces) -> Kaggle framing -> batched cascade -> points in the frame
    -> next frame's framing from these points -> One Euro smoothing.
While a face is tracked its crop comes from its last points, not from a fresh Haar box: that is what
keeps a still face still; where the face's patch moved further than the framing predicts (a fast
swing), the crop follows the patch. A fresh detector box is tried from a few starting framings,
keeping the answer on which the model and its mirror image agree best (`_find`).

Finding faces (`_schedule_searches`): with nothing tracked, the whole frame is searched whenever
anything moved (tracker/scene_watch.py) and every few frames; with faces tracked, wherever something
moved outside them (answered a frame later), in a scene's first second, and routinely every
`detect_every` frames. Searches run on a worker thread (tracker/background.py), except on a file with
nothing tracked, where the search runs on the frame itself.

Losing faces: a track ends the frame its crop stops looking like a face (contrast, shape, and the
model's presence score where the weights have one), or when another track sits on the same face and
is surer of it (a face passing in front of another); a scene cut re-checks every track at once; and
every `verify_every` frames the Haar cascade must still see a face of the track's size in a patch cut
from the track's framing (`max_misses` failures in a row end it).
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from kaggle_framing import CROP_SIZE, MEAN_SHAPE, apply_affine, fit_similarity, framing_transform, interocular, invert_affine
from kaggle_framing.crop import to_gray, warp_crop
from kaggle_framing.weights_contract import DEFAULT_WEIGHTS
from tracker.background import BackgroundJobs
from tracker.detector import Detector, box_from_framing, framing_from_box, opencv_threads
from tracker.haar_detector import HaarDetector
from tracker.keypoint_model import KeypointModel
from tracker.one_euro import OneEuroFilter
from tracker.pipeline import Face
from tracker.scene_watch import SceneWatch, Thumbnail, thumbnail

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
# as the main thread takes them (~1 ms on 2 cores), and a full-frame pass takes 25-60 ms on the other
# core beside the video decoder: at 20 frames the main thread waited 2-10 ms for each routine pass
# (5% of the run's wall time on the 640x480 clip), at 40 up to 16 ms for some. A camera's frames
# come every ~33 ms: 3 is plenty.
FILE_LAG, LIVE_LAG = 60, 3
# Frames between a search where something moved outside the tracked faces (tracker/scene_watch.py)
# and the use of its answer: a face coming into view is tracked this many frames after the search
# that found it. Such searches are rare (a still scene has none), so the main thread may wait on one.
MOTION_LAG = 1
# With nothing tracked and nothing moving, the whole frame is searched every this many frames (a face
# that was there all along, missed, may be found as the noise changes); anything moving, every frame.
IDLE_SEARCH_EVERY = 5
# A scene's first this many frames are searched whole every IDLE_SEARCH_EVERY frames, even with faces
# tracked: Haar misses some faces on some frames (a composed clip: one of two faces on its first frame).
NEW_SCENE_FRAMES = 30
# With faces tracked and most of the frame moving (a pan), a whole-frame search every this many frames.
WIDE_MOTION_EVERY = 4
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
# Two tracks' boxes overlapping more than this (intersection over the smaller box) are on one face:
# one face passing in front of another. The surest track stays; the face behind is found again when
# it comes out.
SAME_FACE_OVERLAP = 0.5
# A track whose face sits this far (crop px) from where the crop expects it has moved faster than the
# framing's prediction (a fast pan, a jolt): its crop is reframed on its points and the model run
# again on this frame, rather than showing points from a face half out of the crop.
REFRAME_SHIFT = 6.0
# A fresh face within this many of its box widths of a track that lost its face takes that track.
RELOCATE_DISTANCE = 1.5
# Where the points' centroid sits in a crop framed on them.
MEAN_CENTRE = MEAN_SHAPE.mean(axis=0)
# A face whose patch moved this far (px) from where the framing's prediction put it is reframed there.
FAST_MOTION = 8.0
# A crop whose presence score (weights that have one) is under this holds no face: its track ends.
MIN_PRESENCE = 0.5


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
    presence: float  # mean of the presence scores on the crop and its mirror image (1: weights without one)


@dataclass
class _Track:
    track_id: int
    framing: np.ndarray  # image -> crop transform for the next frame
    smoother: OneEuroFilter
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame, smoothed
    misses: int = 0  # face checks in a row that saw no face here
    patch: tuple | None = None  # its face on the last frame, small (SceneWatch.patch)
    age: int = 0  # frames tracked
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


@dataclass
class Prepared:
    """What `Tracker.process` needs of a frame before any tracking: the 8-bit gray frame and its
    SceneWatch thumbnail. `prepare` makes it; a video decoder runs it on its own thread."""

    gray: np.ndarray
    thumbnail: Thumbnail


def prepare(frame: np.ndarray) -> Prepared:
    gray = to_gray(frame)
    return Prepared(gray, thumbnail(gray))


def rescaled(framing: np.ndarray, factor: float) -> np.ndarray:
    """The framing with the face drawn `factor` times as large, about the crop's centre."""
    out = framing * factor
    out[:, 2] += (1 - factor) * CROP_SIZE / 2
    return out


def shifted(framing: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The framing of the same face moved by `shift` (frame px): `framing_transform(points + shift)`
    of the points `framing` was fitted to, without a second fit."""
    out = framing.copy()
    out[:, 2] -= framing[:, :2] @ shift
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def centre(box: np.ndarray) -> np.ndarray:
    return box[:2] + box[2:] / 2


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two boxes over the smaller one: 1 when one holds the other (two tracks on one
    face at different sizes, whose IoU can be small)."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    smaller = min(a[2] * a[3], b[2] * b[3])
    return float(max(0.0, x1 - x0) * max(0.0, y1 - y0) / smaller) if smaller > 0 else 0.0


def looks_like_face(crop_points: np.ndarray) -> bool:
    """Shape check of a prediction in crop pixels: close to the mean shape after a similarity fit, at
    a plausible scale and roll. A crop that has drifted off the face fails it."""
    if not np.isfinite(crop_points).all():
        return False
    m = fit_similarity(crop_points, MEAN_SHAPE, rotation=True)
    residual = math.sqrt(float(np.square(apply_affine(m, crop_points) - MEAN_SHAPE).sum()) / len(MEAN_SHAPE))
    (a, _, _), (b, _, _) = m.tolist()  # scalar maths on Python floats: numpy's is slower on one number
    scale = math.hypot(a, b)
    roll = abs(math.degrees(math.atan2(b, a)))
    return residual <= MAX_SHAPE_RESIDUAL and SCALE_RANGE[0] <= scale <= SCALE_RANGE[1] and roll <= MAX_ROLL_DEGREES


class Tracker:
    """Construct once from weights and device; call `process(frame, timestamp)` per frame.

    `detect_every`: frames between routine full-frame detections while faces are tracked (searches
    where something moved come between them, and a scene's first second is searched whole several
    times, so this backstop only finds a face that was in view, still, and missed all along: at 120,
    within four seconds at 30 fps. Each pass is ~20 ms of CPU on a 640x480 frame, taken from the
    cores the decoder and the model share: at 60 it was 0.33 ms a frame, most of the detector's work
    on a one-face clip, and the run was ~6% slower than at 120); `verify_every`: frames between the
    per-track face checks; `max_misses`: failed checks in a row before a track is dropped; `refine_passes`: extra
    model passes on a fresh detection, each reframed from the previous points (Haar boxes frame faces
    loosely); `detector_lag`: while faces are tracked, the routine detections and the face checks run
    on a worker thread and their answers are used this many frames later (see background.py;
    default: FILE_LAG, or LIVE_LAG from a camera); `live`: frames come from a camera, so with nothing
    tracked the search for faces runs on the worker too and is answered on the next frame: a frame
    without faces is drawn at once instead of after a ~25 ms full-frame pass (a file, where every
    frame's faces count, keeps searching in line).
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, device: str = "auto", smooth: bool = True,
                 max_faces: int = 10, detect_every: int = 120, verify_every: int = 10, max_misses: int = 2,
                 refine_passes: int = 1, detector: Detector | None = None, detector_lag: int | None = None,
                 live: bool = False) -> None:
        if detector_lag is None:
            detector_lag = LIVE_LAG if live else FILE_LAG
        if detector_lag < 1:
            raise ValueError("detector_lag must be at least 1 frame")
        self.model = KeypointModel(weights, device)
        # The tracker spreads its work over its own threads (video decoder, detector worker, model);
        # OpenCV's thread pool on top puts detector work on the model's core and spins (2-core
        # machine, 2400-frame clip: system time 2.4 -> 1.0 s, wall time 12-13 -> 10.4-12 s).
        # A still image's detection runs on every core OpenCV may use (see process_image): their
        # count, not the pool's, which another Tracker in this process may have set to one.
        self.photo_threads = cv2.getNumberOfCPUs()
        cv2.setNumThreads(1)
        self.detector = detector or HaarDetector()
        self.smooth, self.max_faces = smooth, max_faces
        self.detect_every, self.verify_every = detect_every, verify_every
        self.max_misses, self.refine_passes = max_misses, refine_passes
        self.detector_lag, self.live = detector_lag, live
        self.background = BackgroundJobs()
        self.scene = SceneWatch()
        self.timings: dict[str, float] = defaultdict(float)  # seconds per stage, summed
        self.faces_left_out = 0  # faces found but not followed, over max_faces (the smallest go)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new video, or unrelated images)."""
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.frame_index = 0
        self.next_idle_search = self.next_wide_search = self.next_thorough_search = self.scene_start = 0
        self.background.clear()
        self.scene.reset()

    def close(self) -> None:
        """Stop the detector's threads."""
        self.background.close()
        self.detector.close()

    def _box(self, framing: np.ndarray) -> np.ndarray:
        """The detector's box (x, y, w, h) for the face a crop framing holds."""
        return box_from_framing(framing, self.detector.box_center, self.detector.box_scale)

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
        """Crop pixels (N, 15, 2), frame pixels (N, 15, 2), contrast (N,) and presence (N,) of the
        faces under these framings."""
        crops = self._crops(gray, framings)
        contrast = np.array([cv2.meanStdDev(c)[1][0, 0] for c in crops])
        t = time.perf_counter()
        answers = self.model.predict(crops)
        crop_points, presence = answers.points, answers.presence
        self._timed("model", t)
        frame_points = np.stack([apply_affine(invert_affine(f), p) for f, p in zip(framings, crop_points)])
        return crop_points, frame_points, contrast, presence

    def _settle(self, gray: np.ndarray, boxes: list[np.ndarray], shifts: tuple, passes: int) -> list[_Found]:
        """For each box, the best of the answers from these starting shifts (see `_find`)."""
        starts = []
        for box in boxes:
            base = framing_from_box(box, self.detector.box_center, self.detector.box_scale)
            starts += [base + np.array([[0, 0, dx], [0, 0, dy]], np.float32) for dx, dy in shifts]
        points = self._predict(gray, starts)[1]
        for _ in range(passes):
            points = self._predict(gray, [framing_transform(p, rotation=True) for p in points])[1]
        framings = [framing_transform(p, rotation=True) for p in points]
        crops = self._crops(gray, framings)
        t = time.perf_counter()
        answers = self.model.predict(crops, mirror=True)
        self._timed("model", t)
        disagreement = answers.disagreement.reshape(len(boxes), -1)
        found = []
        for j in disagreement.argmin(axis=1) + np.arange(len(boxes)) * len(shifts):
            crop_points = answers.points[j]
            points = apply_affine(invert_affine(framings[j]), crop_points)
            framing = framing_transform(points, rotation=True)
            found.append(_Found(crop_points, points, float(disagreement.flat[j]), framing, self._box(framing),
                                float(answers.presence[j])))
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
        # Of the answers on one face (nested boxes, or one face's candidates at two angles), a face
        # before no face, then the surest.
        for f in sorted(found, key=lambda f: (f.presence < MIN_PRESENCE, f.disagreement)):
            if all(iou(f.box, k.box) <= SAME_FACE_IOU for k in kept):
                kept.append(f)
        return [f for f in found if any(f is k for k in kept)]

    def _search(self, gray: np.ndarray, region: tuple[int, int, int, int] | None,
                tracked: list[tuple[_Track, np.ndarray]], both: bool = True, routine: bool = False):
        """Detector pass (on the worker) over the frame or a region of it, returned with the tracks'
        boxes on the frame it searched."""
        return self.detector.detect(gray, region, both=both, routine=routine), tracked

    def _use_detections(self, gray: np.ndarray, boxes: np.ndarray,
                        tracked_then: list[tuple[_Track, np.ndarray]]) -> None:
        """Start tracks on the detector's boxes that no track covers, and reframe a track whose size
        the detector disagrees with. `tracked_then`: (track, box) on the frame the detector searched,
        which may be some frames back: a moving face is matched where it was then."""
        alive = [(track, box) for track, box in tracked_then if any(track is t for t in self.tracks)]
        tracked_now = [self._box(tr.framing) for tr in self.tracks]
        fresh, unmatched = [], [track for track, _ in alive]
        for b in boxes:
            match = max(alive, key=lambda tb: iou(b, tb[1]), default=None)
            if match is not None and iou(b, match[1]) >= SAME_FACE_IOU:
                track, then = match
                unmatched = [t for t in unmatched if t is not track]
                if not 1 / MAX_SCALE_DISAGREEMENT <= b[2] / then[2] <= MAX_SCALE_DISAGREEMENT:
                    track.framing = rescaled(track.framing, then[2] / b[2])
            elif all(iou(b, k) < SAME_FACE_IOU for k in tracked_now):
                fresh.append(b)
        self._start_tracks(gray, fresh, unmatched)

    def _largest(self, found: list[_Found], room: int) -> list[_Found]:
        """The `room` largest of these faces (in their order), counting the others as left out."""
        if len(found) <= room:
            return found
        self.faces_left_out += len(found) - room
        keep = sorted(range(len(found)), key=lambda i: -found[i].box[2])[:room]
        return [found[i] for i in sorted(keep)]

    def _start_tracks(self, gray: np.ndarray, boxes: list[np.ndarray] | np.ndarray, lost: list[_Track] = ()) -> None:
        """Start tracks on these detector boxes; where there is no room for all, on the largest of
        those that look like faces. A box near one of the `lost` tracks (the detector saw no face on
        them) whose own patch no longer holds a face takes that track instead, id and all: it outran
        its framing (a fast swing, a change of direction) and was left on the background."""
        if len(boxes) == 0:
            return
        lost, new = list(lost), []
        for found in self._find(gray, boxes, self.refine_passes):
            distance = {id(t): np.linalg.norm(centre(self._box(t.framing)) - centre(found.box)) for t in lost}
            track = min(lost, key=lambda t: distance[id(t)], default=None)
            if (track is not None and distance[id(track)] < RELOCATE_DISTANCE * found.box[2]
                    and not self.detector.contains_face(self._check_patch(gray, track), VERIFY_FACE / self.detector.box_scale)):
                lost.remove(track)
                track.framing, track.points, track.velocity = found.framing, np.zeros((0, 2)), np.zeros(2)
                track.smoother.reset()
            else:
                new.append(found)
        room = max(self.max_faces - len(self.tracks), 0)
        if len(new) > room:
            new = [f for f in new if looks_like_face(f.crop_points)]
        for face in self._largest(new, room):
            self.tracks.append(_Track(self.next_id, face.framing, OneEuroFilter()))
            self.next_id += 1

    def _check_patch(self, gray: np.ndarray, track: _Track) -> np.ndarray:
        """The upright VERIFY_PATCH square patch of a track's face, the face VERIFY_FACE px wide in it."""
        matrix = rescaled(track.framing, VERIFY_FACE / CROP_SIZE)
        matrix[:, 2] += (VERIFY_PATCH - CROP_SIZE) / 2  # the crop's centre at the patch's centre
        return warp_crop(gray, matrix, VERIFY_PATCH)

    def _sureness(self, gray: np.ndarray, framings: list[np.ndarray], presence: np.ndarray) -> np.ndarray:
        """How surely each crop holds a face: its presence score, or, from weights without one, minus
        the model's disagreement with its mirror image (crop px; a second look, paid only here)."""
        if self.model.has_presence:
            return presence
        return -self.model.predict(self._crops(gray, framings), mirror=True).disagreement

    def _search_now(self, gray: np.ndarray, routine: bool = False) -> None:
        """Search the whole frame on this frame (nothing tracked, or a scene cut)."""
        t = time.perf_counter()
        boxes = self.detector.detect(gray, both=True, routine=routine)
        self._timed("detect", t)
        self._use_detections(gray, boxes, [(tr, self._box(tr.framing)) for tr in self.tracks])

    def _schedule_searches(self, gray: np.ndarray, cut: bool) -> None:
        """Hand the detector what it should look at on this frame. The whole frame, at once, after a
        scene cut, and with nothing tracked wherever anything moved or every IDLE_SEARCH_EVERY frames;
        with faces tracked, routinely every `detect_every` frames and, between those, MOTION_LAG
        frames ahead: wherever something moved outside them (a face coming into view; a small region
        is searched finely; most of the frame moving, a pan, costs a whole-frame search every
        WIDE_MOTION_EVERY frames), and the whole frame every IDLE_SEARCH_EVERY frames of a scene's
        first NEW_SCENE_FRAMES (a face missed on its first frame, beside one that was found)."""
        if cut:
            self.scene_start = self.frame_index
        boxes = [self._box(tr.framing) for tr in self.tracks]
        tracked = list(zip(self.tracks, boxes))
        moved = self.scene.motion(boxes)
        idle_due = self.frame_index >= self.next_idle_search
        if cut or (not self.tracks and (moved is not None or idle_due)):
            # The detector's thorough search (turned copies and all) at most every IDLE_SEARCH_EVERY
            # frames while things move and nothing is tracked, its routine look between: a tilted face
            # is found within that many frames, and a video of motion without faces costs little more
            # than an upright search a frame.
            routine = not (cut or self.frame_index >= self.next_thorough_search)
            if not routine:
                self.next_thorough_search = self.frame_index + IDLE_SEARCH_EVERY
            self.next_idle_search = self.frame_index + IDLE_SEARCH_EVERY
            if not self.live:  # on this frame
                self._search_now(gray, routine)
            elif not any(d <= self.frame_index + 1 for d in self.background.due_frames("detect")):
                self.background.submit(self.frame_index + 1, self._search, gray.copy(), None, tracked, True, routine,
                                       tag="detect")
            return
        if not self.tracks:
            return  # nothing moved since the last search: it would see what it saw
        if self.frame_index % self.detect_every == 0:  # the backstop: the detector's routine look (cheap)
            self.background.submit(self.frame_index + self.detector_lag, self._search, gray.copy(), None, tracked, False,
                                   True, tag="detect")
            return
        if self.background.due_frames("motion"):
            return
        if idle_due and self.frame_index - self.scene_start < NEW_SCENE_FRAMES:
            moved = None  # another look, on other noise (with the first cascade alone: 4 -> 27 frames once)
            self.next_idle_search = self.frame_index + IDLE_SEARCH_EVERY
        elif moved is None:
            return
        elif (moved[2] - moved[0]) * (moved[3] - moved[1]) > 0.5 * gray.shape[0] * gray.shape[1]:
            if self.frame_index < self.next_wide_search:
                return
            moved = None  # the whole frame, at its usual settings
            self.next_wide_search = self.frame_index + WIDE_MOTION_EVERY
        # A whole-frame look here (a scene's first second, a pan) is routine: faces are tracked, and the
        # main thread waits on it.
        self.background.submit(self.frame_index + min(MOTION_LAG, self.detector_lag), self._search, gray.copy(), moved,
                               tracked, True, moved is None, tag="motion")

    def process(self, frame: np.ndarray, timestamp: float, prepared: Prepared | None = None) -> list[Face]:
        """Faces in this frame. `timestamp` in seconds drives the smoothing (any frame rate);
        `prepared`: `prepare(frame)`, where the caller has it (a video decoder's thread makes it)."""
        prepared = prepare(frame) if prepared is None else prepared
        gray = prepared.gray
        cut = self.scene.see(prepared.thumbnail)
        if cut and self.tracks:
            # Every answer about the old scene is stale, and every track in doubt: a track stays only
            # where the detector still sees a face of its size in its patch (a change of light).
            self.background.clear()
            self.tracks = [tr for tr in self.tracks
                           if self.detector.contains_face(self._check_patch(gray, tr), VERIFY_FACE / self.detector.box_scale)]
        for job, answer, seconds in self.background.collect(self.frame_index):
            self.timings["detect"] += seconds
            if job in ("detect", "motion"):
                self._use_detections(gray, *answer)
            else:  # a track's face check
                job.misses = 0 if answer else job.misses + 1
        # The detector's periodic look at each track's face, for weights without a presence score
        # (with one, every frame's crop is judged: the detector's second opinion only loses faces
        # it cannot see, such as a turned one, and ended a walking-in face's track in the events).
        for track in self.tracks if not self.model.has_presence else ():
            if track.age % self.verify_every == self.verify_every - 1:
                patch = self._check_patch(gray, track)
                self.background.submit(self.frame_index + self.detector_lag, self.detector.contains_face, patch,
                                       VERIFY_FACE / self.detector.box_scale, tag=track)
        self.tracks = [tr for tr in self.tracks if tr.misses < self.max_misses]
        self._schedule_searches(gray, cut)
        self.frame_index += 1
        if not self.tracks:
            return []
        for track in self.tracks:
            # Faster than the framing's prediction (a swing, a change of direction): where the face's
            # patch went says where to look.
            moved = self.scene.shift(track.patch) if track.patch is not None else None
            if moved is not None and math.hypot(*(moved - track.velocity)) > FAST_MOTION:
                track.framing = shifted(track.framing, moved - track.velocity)
                track.velocity = moved
        crop_points, points, contrast, presence = self._predict(gray, [tr.framing for tr in self.tracks])
        # Faster than the framing's prediction (a fast pan, a jolt): reframe on the points, look again.
        drift = crop_points.sum(axis=1) / len(MEAN_SHAPE) - MEAN_CENTRE
        off = np.hypot(drift[:, 0], drift[:, 1]) > REFRAME_SHIFT
        if off.any():
            again = self._predict(gray, [framing_transform(p, rotation=True) for p in points[off]])
            for values, redone in zip((crop_points, points, contrast, presence), again):
                values[off] = redone
        t = time.perf_counter()
        alive = [i for i, (crop_p, c, score) in enumerate(zip(crop_points, contrast, presence))
                 if c >= MIN_CROP_CONTRAST and looks_like_face(crop_p) and score >= MIN_PRESENCE]
        fitted = {i: framing_transform(points[i], rotation=True) for i in alive}
        boxes = {i: self._box(f) for i, f in fitted.items()}
        crowded = [i for i in alive if any(j != i and overlap(boxes[i], boxes[j]) > SAME_FACE_OVERLAP for j in alive)]
        if crowded:
            # Tracks on one face (one passing in front of another): the surest stays, the others end
            # (the face behind is found again when it comes out).
            surer = dict(zip(crowded, self._sureness(gray, [self.tracks[i].framing for i in crowded], presence[crowded])))
            for i in sorted(crowded, key=surer.get, reverse=True):
                if any(overlap(boxes[i], boxes[j]) > SAME_FACE_OVERLAP for j in boxes if surer.get(j, -np.inf) > surer[i]):
                    del boxes[i]
        faces, kept = [], []
        for i in sorted(boxes):
            track, p = self.tracks[i], points[i]
            if len(track.points):
                # Frame the next crop where the face will be, not where it was: at 8 px per frame
                # the face would otherwise sit off-centre and the points would trail it.
                track.velocity = 0.5 * track.velocity + 0.5 * (p - track.points).mean(axis=0)
            track.framing = shifted(fitted[i], track.velocity)
            kept.append(track)
            track.patch = self.scene.patch(boxes[i])
            track.points = p
            track.age += 1
            shown = track.smoother(p, timestamp, float(interocular(p))) if self.smooth else p
            score = float(presence[i]) if self.model.has_presence else None
            faces.append(Face(track.track_id, boxes[i], shown.astype(np.float32), p.astype(np.float32), score))
        self.tracks = kept
        self._timed("smooth", t)
        return faces

    def process_image(self, image: np.ndarray) -> list[Face]:
        """Faces of a still image: fresh detection, framing refined from the model's own points."""
        self.reset()
        gray = to_gray(image)
        t = time.perf_counter()
        # A still image has the machine to itself: OpenCV's threads split the detector's scales (a
        # 759x500 photo, 2 cores: 160 -> 90 ms).
        with opencv_threads(self.photo_threads):
            boxes = self.detector.detect(gray)
        self._timed("detect", t)
        if len(boxes) == 0:
            return []
        # Time is no object for a still image: one more reframing pass than for a new track.
        found = self._find(gray, boxes, self.refine_passes + 1)
        presence = self._predict(gray, [f.framing for f in found])[3] if self.model.has_presence else np.ones(len(found))
        # Haar fires on textures too: the shape check, and the presence score where the weights have one.
        scores = {id(f): float(score) for f, score in zip(found, presence)}
        found = [f for f in found if looks_like_face(f.crop_points) and scores[id(f)] >= MIN_PRESENCE]
        return [Face(i, f.box, f.points, f.points, scores[id(f)] if self.model.has_presence else None)
                for i, f in enumerate(self._largest(found, self.max_faces))]
