"""Face boxes from a gray frame: OpenCV's Haar frontal-face cascade, run on a downscaled frame.

The tracker sees it through `tracker.detector.Detector`, so another detector can replace this one.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from tracker.detector import DetectorError, box_from_framing, framing_from_box, no_candidates, opencv_threads
from tracker.pipeline import Box


def _cascade_path(name: str) -> Path:
    data = getattr(cv2, "data", None)
    if data is None or not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError(
            f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them): "
            "pip install 'opencv-python>=4.12,<5' and uninstall other opencv packages"
        )
    return Path(data.haarcascades) / name


def _cascade(path: Path) -> cv2.CascadeClassifier:
    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError):  # a damaged file raises (as SystemError from the constructor)
        cascade = None
    if cascade is None or cascade.empty():
        raise DetectorError(f"cannot load the Haar cascade {path} (reinstall opencv-python)")
    return cascade


# (scale step, min neighbours) of a search in a region where something moved. The alt2 cascade at the
# whole frame's (1.2, 4) misses, in such regions, a face it finds at (1.1, 3).
REGION_SETTINGS = (1.1, 3)
# The turned copies searched for tilted heads (degrees). The frontal cascade finds a face within about
# +-10 degrees of upright; copies 20 degrees apart cover 50 degrees either way.
TILTS = (20.0, -20.0, 40.0, -40.0)
# The turned copies are searched on a frame no larger than this (px, longer side): a copy holding all
# of a turned frame is about twice its area, so four copies of a 640-px photo at full size would cost
# ~8 upright passes. Video, searched at 320 px, turns its frames at that size. Photos, searched at
# 640, are turned at 240: a face must then be 8% of the photo's longer side to be found tilted (3%
# upright). Against 320 there: held-out faces turned 30 and 45 degrees 6 of 600 missed (7), turned 0
# and 15 degrees 1 of 450 (1), HELEN test found 99.1% (99.1%); a 759x500 photo's faces in ~185 ms (~250).
# On video 240 cost a pickup: a face tilted in the first frame of the events' tilted clip, found 5
# frames late.
TURNED_MAX_SIDE, PHOTO_TURNED_MAX_SIDE = 320, 240
# A routine look (video, faces tracked) adds a turned copy this rarely: on the benchmark page's 640x480
# clip, one every fourth look made detection 0.60 -> 0.90 ms a frame and the run ~20% slower.
ROUTINE_TURN_EVERY = 8


def same_face(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of `others` (K, 4+) sit on the face of `box`: centres within half its width, sizes within
    a factor 1.5 (a smaller box on part of the face, an eye or the mouth, is not the face's box)."""
    centre, side = box[:2] + box[2:4] / 2, box[2]
    near = np.hypot(*(others[:, :2] + others[:, 2:4] / 2 - centre).T) < side / 2
    return near & (others[:, 2] < 1.5 * side) & (others[:, 2] > side / 1.5)


class _Cascade:
    """A cascade, loaded on a helper thread (`helper`) or else at its first use, and the lock that
    keeps it to one call at a time (a CascadeClassifier keeps per-call buffers; the tracker calls the
    detector from its worker thread and, with nothing tracked, from the main one)."""

    def __init__(self, path: Path, helper: ThreadPoolExecutor | None) -> None:
        self.path, self.lock = path, threading.Lock()
        self._loading = helper.submit(_cascade, path) if helper is not None else None
        self._loaded: cv2.CascadeClassifier | None = None

    def _get(self) -> cv2.CascadeClassifier:  # (under the lock)
        if self._loaded is None:
            self._loaded = self._loading.result() if self._loading is not None else _cascade(self.path)
        return self._loaded

    def detect(self, image: np.ndarray, settings: tuple[float, int], min_size: tuple[int, int],
               max_size: tuple[int, int] = (0, 0)) -> np.ndarray:
        """(K, 4) boxes ((0, 0): no largest size)."""
        with self.lock:
            boxes = self._get().detectMultiScale(image, *settings, minSize=min_size, maxSize=max_size)
        return np.reshape(boxes, (-1, 4))

    def detect_with_votes(self, image: np.ndarray, settings: tuple[float, int],
                          min_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(K, 4) boxes and (K,) neighbour counts."""
        with self.lock:
            boxes, votes = self._get().detectMultiScale2(image, *settings, minSize=min_size)
        return np.reshape(boxes, (-1, 4)), np.ravel(votes)


class HaarDetector:
    """`detect(gray)` -> (K, 4) float boxes x, y, w, h in frame pixels, largest first.

    `max_side`: the frame is shrunk so its longer side is at most this before detection (speed);
    `min_face`: smallest face side, as a fraction of the frame's shorter side; `scale_step`: ratio
    between the face sizes tried (smaller is finer and slower); `fallback`: (scale step, min
    neighbours) of a pass of OpenCV's alt2 cascade where the default one finds nothing, or None;
    `angles`: the frame's turned copies the first cascade also searches (degrees), for tilted heads;
    `profile`: OpenCV's profile-face cascade also searches the frame and its mirror image (heads
    turned to either side), at the first cascade's settings; `turned_max_side`: the turned copies'
    longer side at most (px); `load_fallback_first`: the fallback cascade loads with the first one, on
    the helper thread (a video's first search runs both), not where first used (`for_images`).

    Why alt2 behind the default: on the composed event clips (benchmarks/events.py, 320-px frames,
    step 1.2, 4 neighbours) the default cascade finds 151 of 183 faces in view, alt2 176; one face
    there the default never finds on an equalised frame, alt2 always. The default cascade stays first:
    the crop framing is calibrated on its boxes, and it holds faces turned further. (The profile
    cascade found 6 of 14 of that frontal face's frames: no help for frontal faces.)
    """

    # Its boxes -> the Kaggle crop (tracker.detector.Detector), measured on ytf68 by
    # `python -m train calibrate-box`.
    box_center = (0.514, 0.509)
    box_scale = 1.003

    @classmethod
    def for_images(cls, profile: bool = False) -> HaarDetector:
        """Still images: time is no object, so a finer, more permissive detection than for video."""
        return cls(max_side=640, min_face=0.05, min_neighbors=3, scale_step=1.1, fallback=(1.05, 2), angles=TILTS,
                   profile=profile, turned_max_side=PHOTO_TURNED_MAX_SIDE, load_fallback_first=False)

    @classmethod
    def framing_from_box(cls, box: Box) -> np.ndarray:
        """2x3 transform from frame pixels to the Kaggle crop of one of its boxes."""
        return framing_from_box(box, cls.box_center, cls.box_scale)

    @classmethod
    def box_from_framing(cls, framing: np.ndarray) -> Box:
        """The box it would give for the face a crop framing holds."""
        return box_from_framing(framing, cls.box_center, cls.box_scale)

    def __init__(self, max_side: int = 320, min_face: float = 0.1, min_neighbors: int = 4, scale_step: float = 1.2,
                 fallback: tuple[float, int] | None = (1.2, 4), angles: tuple[float, ...] = TILTS,
                 profile: bool = False, turned_max_side: int = TURNED_MAX_SIDE, load_fallback_first: bool = True) -> None:
        self.fallback = fallback
        self.turned_max_side = turned_max_side
        self.max_side, self.scale_step = max_side, scale_step
        self.min_face = min_face
        self.min_neighbors = min_neighbors
        self.angles = tuple(a for a in angles if a != 0)
        self._routine_looks = 0  # routine looks so far (see `_turned_passes`)
        self._region_looks = 0  # region searches so far (see `detect`)
        # The first cascade loads (its XML: ~40 ms) on the helper thread while the caller goes on
        # loading the model and opening its input; the first detection waits for it if it must. So
        # does alt2 for video (~17 ms: a video's first search runs both, and waited that long for it).
        # For photos alt2 loads where first used (a photo whose faces the first finds never needs
        # it), as the turned copies' alt2 always does. The helper thread also runs passes beside the
        # caller's (OpenCV gives up the GIL), each with a cascade of its own: alt2 beside the first
        # cascade where both run (`both`, regions: a search the tracker waits on, 640x480, ~40 -> ~20
        # ms), half of the turned copies.
        self._beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="haar")

        def load(name: str, now: bool = True) -> _Cascade:
            return _Cascade(_cascade_path(name), self._beside if now else None)

        default, alt2 = "haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"
        self._first = load(default)
        self._alt2 = load(alt2, now=load_fallback_first) if fallback is not None else None
        self._profile = load("haarcascade_profileface.xml") if profile else None
        # (first, alt2) for the turned copies on the helper thread (see `_turned_passes`)
        self._turned_beside = (load(default) if self.angles else None,
                               load(alt2, now=False) if self.angles and fallback is not None else None)

    def close(self) -> None:
        """Let the helper thread go (it ends once any pass it runs is done)."""
        self._beside.shutdown(wait=False)

    def contains_face(self, patch: np.ndarray, face_side: float) -> bool:
        """Whether a face about `face_side` pixels wide is in this small upright patch (track check)."""
        boxes = self._first.detect(cv2.equalizeHist(patch), (1.2, 2), (int(0.7 * face_side),) * 2,
                                   (int(1.4 * face_side),) * 2)
        return len(boxes) > 0

    def detect(self, gray: np.ndarray, region: tuple[int, int, int, int] | None = None, both: bool = False,
               routine: bool = False) -> np.ndarray:
        """Candidates (x, y, w, h, angle) in the whole frame, or only in `region` (x0, y0, x1, y1)
        (frame pixels either way). `both`: the fallback cascade's boxes are added to the first one's
        even where that finds some (video: one face found must not hide another). A region is
        searched with both, at the frame's scale and face sizes, with finer settings
        (REGION_SETTINGS): it is small, and a face is likely in it.

        Then the first cascade searches copies turned by each of `angles` (see `_turned_passes`) at
        the whole frame's settings (a region's finer ones cost twice as much):
        - in a region, the first and the fallback cascade take turns, one a search (the fallback one
          finds faces the first misses there: a dark face walking in tilted, on a light wall, in the
          events benchmark);
        - a `routine` look (a video's periodic check) adds, every ROUTINE_TURN_EVERY-th time, one
          turned copy, the next angle each time: a turned copy costs about twice an upright pass,
          and a tilted face missed and in view for a while is found as surely;
        - where a whole frame's search (not a routine one) finds nothing at all, the fallback
          cascade searches the turned copies too, at its settings, as it does the upright frame: on
          held-out photos turned 30 and 45 degrees, 18 -> 7 of 600 faces missed (small faces, eyes
          12-35 px apart, which the first cascade misses on a turned copy)."""
        h, w = gray.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        min_side = max(20, int(self.min_face * min(h, w) * scale))
        x0, y0 = 0, 0
        settings, fallback_settings = (self.scale_step, self.min_neighbors), self.fallback
        if region is not None:
            settings = fallback_settings = (min(self.scale_step, REGION_SETTINGS[0]), min(self.min_neighbors, REGION_SETTINGS[1]))
            x0, y0, x1, y1 = (int(v) for v in region)
            gray = gray[y0:y1, x0:x1]
            h, w = gray.shape[:2]
            if min(h, w) * scale < min_side:
                return no_candidates()
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else gray
        small = cv2.equalizeHist(small)
        min_size = (min_side, min_side)
        alt2 = None
        if self._alt2 is not None and (both or region is not None):
            alt2 = self._beside.submit(self._alt2.detect, small, fallback_settings, min_size)
        boxes = self._first.detect(small, settings, min_size)
        if alt2 is None and self._alt2 is not None and len(boxes) == 0:
            more = self._alt2.detect(small, fallback_settings, min_size)
        else:
            more = alt2.result() if alt2 is not None else no_candidates()[:, :4]
        upright = np.concatenate([boxes, more]).astype(np.float32)
        if self._profile is not None:
            upright = np.concatenate([upright, self._profile_passes(small, settings, min_size)])
        # In a region the cascades take turns on the turned copies, one a search: each costs about
        # twice the region's upright passes, and a face coming into view is searched again next frame.
        alt2_turns = region is not None and self._alt2 is not None and self._region_looks % 2 == 1
        self._region_looks += region is not None
        turned = self._turned_passes(small, (self.scale_step, self.min_neighbors), min_size, routine, alt2=alt2_turns)
        candidates = np.concatenate([np.c_[upright, np.zeros(len(upright), np.float32)], turned])
        if len(candidates) == 0 and self._alt2 is not None and region is None and not routine:
            candidates = self._turned_passes(small, fallback_settings, min_size, alt2=True)
        if len(candidates) == 0:
            return no_candidates()
        candidates[:, :4] = candidates[:, :4] / scale + np.array([x0, y0, 0, 0], np.float32)
        return candidates[np.argsort(-candidates[:, 2], kind="stable")]

    def _profile_passes(self, small: np.ndarray, settings: tuple[float, int], min_size: tuple[int, int]) -> np.ndarray:
        """(K, 4) boxes of the profile cascade (trained on faces turned to one side) on `small` and on
        its mirror image (the other side), mirrored back."""
        one_side = self._profile.detect(small, settings, min_size)
        other = self._profile.detect(cv2.flip(small, 1), settings, min_size)
        other = np.c_[small.shape[1] - other[:, 0] - other[:, 2], other[:, 1:]]
        return np.concatenate([one_side, other]).astype(np.float32)

    @staticmethod
    def _turned_pass_all(cascade: _Cascade, small: np.ndarray, angles: tuple[float, ...],
                         settings: tuple[float, int], min_size: tuple[int, int]) -> tuple[list, list]:
        """Boxes (x, y, w, h, angle) in `small`'s pixels, and their neighbour counts, of one cascade
        on copies of `small` turned by each of `angles`."""
        h, w = small.shape[:2]
        found, votes = [], []
        for angle in angles:
            turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            cos, sin = abs(turn[0, 0]), abs(turn[0, 1])
            size = (round(h * sin + w * cos), round(h * cos + w * sin))
            turn[:, 2] += (size[0] - w) / 2, (size[1] - h) / 2
            # Replicated edges: a constant border draws a straight edge across the copy, on which the
            # cascade fires more than on the frame's own content.
            copy = cv2.warpAffine(small, turn, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            boxes, neighbours = cascade.detect_with_votes(copy, settings, min_size)
            if len(boxes) == 0:
                continue
            boxes = boxes.astype(np.float32)
            centres = cv2.transform((boxes[:, :2] + boxes[:, 2:] / 2)[None], cv2.invertAffineTransform(turn))[0]
            found += [(cx - bw / 2, cy - bh / 2, bw, bh, angle) for (cx, cy), (_, _, bw, bh) in zip(centres, boxes)]
            votes += neighbours.tolist()
        return found, votes

    def _turned_passes(self, small: np.ndarray, settings: tuple[float, int], min_size: tuple[int, int],
                       routine: bool = False, alt2: bool = False) -> np.ndarray:
        """(K, 5) candidates from the first cascade (`alt2`: the fallback one) on copies of `small`
        turned by each of `angles`.

        A copy turned by a about its centre (onto a canvas that holds all of it) shows upright a
        face tilted by -a; a face is found there as a box, whose centre is mapped back. Of the boxes
        that fall on one face (`same_face`) in two turned passes, only the one with the most
        neighbours is kept: a face between two angles is found by both, and each candidate costs the
        tracker model passes. An upright box does not hide a turned one: on a head tilted 30 degrees
        the upright pass can find a box from which the model does not find the face's points (the
        tracker keeps, of the candidates on one face, the one the model is surest of)."""
        angles = self.angles
        if routine and angles:  # every ROUTINE_TURN_EVERY-th routine look adds one turned copy, the next angle each time
            look, self._routine_looks = self._routine_looks, self._routine_looks + 1
            turn = look % ROUTINE_TURN_EVERY == ROUTINE_TURN_EVERY - 1
            angles = (self.angles[look // ROUTINE_TURN_EVERY % len(self.angles)],) if turn else ()
        if not angles:
            return no_candidates()
        shrink = min(1.0, self.turned_max_side / max(small.shape[:2]))
        if shrink < 1:
            small = cv2.resize(small, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
            min_size = (max(20, round(min_size[0] * shrink)),) * 2
        # Half the copies here and half on the helper thread, with a copy of the cascade of its own: a
        # search the tracker waits on (a video's first frame, a scene cut) takes about half the time
        # on two cores. OpenCV's own threads (a photo's upright pass uses them) are off meanwhile: on
        # top of these two they cost time (two cores, a 759x500 photo's copies at 320 px: ~240 -> ~190 ms).
        here, there = (self._alt2, self._turned_beside[1]) if alt2 else (self._first, self._turned_beside[0])
        with opencv_threads(1):
            beside = (self._beside.submit(self._turned_pass_all, there, small, angles[1::2], settings, min_size)
                      if len(angles) > 1 else None)
            found, votes = self._turned_pass_all(here, small, angles[::2], settings, min_size)
            if beside is not None:
                more, more_votes = beside.result()
                found, votes = found + more, votes + more_votes
        if not found:
            return no_candidates()
        found, votes = np.array(found, np.float32), np.array(votes)
        found[:, :4] /= shrink
        kept = []
        for i in np.argsort(-votes, kind="stable"):
            if not same_face(found[i], found[kept]).any():
                kept.append(i)
        return found[kept].reshape(-1, 5)
