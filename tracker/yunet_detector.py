"""Face candidates from a gray frame: YuNet (OpenCV's `cv2.FaceDetectorYN`), each with the angle at
which its face stands upright, read from its two eye landmarks.

Optional (`--detector yunet`); `tracker.haar_detector.HaarDetector` is the default. The model,
weights/face_detection_yunet_2026may.onnx (MIT), is described in weights/README.md.
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from tracker.detector import DetectorError, no_candidates
from tracker.pipeline import Box

MODEL = Path(__file__).resolve().parents[1] / "weights" / "face_detection_yunet_2026may.onnx"
# Inputs are padded (gray) to at least this side: OpenCV 4.14's YuNet makes up faces on an input with
# a side of 32 px or less (flat gray inputs of random sizes, each after a photo: 23 of 1500 had a
# "face", every one with a side of 32 or less; padded to 64, none).
MIN_INPUT = 64
# The turned copies of a thorough search (`both`), degrees. One pass finds 98/98/97/80% of ytf68 faces
# tilted by 0/15/30/45 degrees; with copies turned by +-45 as well, 98.7% or more at every tilt up to 45
# and beyond (research: 75 faces x 7 tilts), for ~5x the time.
TURNS = (45.0, -45.0)
# Two candidates whose centres are nearer than this share of the smaller box's width are one face
# (the same face found in the frame and in a turned copy): the surer one is kept.
SAME_FACE = 0.5
# YuNet reads a tilted face's eyes too level: 0.40 of the tilt within 10 degrees of upright, 0.45
# within 35 (ytf68 fixture faces turned by -60..60 degrees). So each candidate gets LOOKS second looks,
# in a patch turned by its angle so far, the face LOOK_FACE px wide there: what tilt is left is read
# near upright and multiplied by EYE_GAIN. Angle error, median / 90th percentile, at a tilt of 15 and
# 30 degrees: 6.8 / 18.5 and 8.2 / 19.3 from a thorough search alone, 4.6 / 13.0 and 4.3 / 12.3 after
# two looks (~1.5 ms each); at 0 and 45: 4.1 / 9.3 -> 3.1 / 8.0 and 3.4 / 8.6.
LOOKS, LOOK_FACE, EYE_GAIN = 2, 64, 2.5
# Its boxes are YuNet's grown by this about their centre: about the Kaggle crop's side, as the Haar
# detector's are (box_scale ~1), because the tracker's margins are in box widths measured on those
# (where motion beside a tracked face calls for a search: on samples/talking_face.mp4, YuNet's own
# boxes brought 226 region searches, these 28, Haar's 8).
BOX_GROW = 1.24


def _load(path: Path) -> cv2.FaceDetectorYN:
    if not path.is_file():
        raise DetectorError(f"cannot load the YuNet face detector: {path} is missing")
    try:
        return cv2.FaceDetectorYN.create(str(path), "", (320, 320))  # (each call sets its input's size)
    except cv2.error:
        raise DetectorError(f"cannot load the YuNet face detector: {path} is not a readable ONNX model") from None


def eye_angle(faces: np.ndarray) -> np.ndarray:
    """(N,) degrees that turn each YuNet face (row: box, then the subject's right eye, which is on the
    screen's left, then the left eye, ...) upright: positive where the eye on the screen's right is
    lower (the frame turned counter-clockwise by it levels the eyes)."""
    return np.degrees(np.arctan2(faces[:, 7] - faces[:, 5], faces[:, 6] - faces[:, 4]))


def face_centre(faces: np.ndarray) -> np.ndarray:
    """(N, 2) mean of each YuNet face's five landmarks: where its boxes are centred. YuNet's own box
    follows the head, which a turned head moves off the inner face the Kaggle crop frames: over 316
    ytf68 faces the crop's centre sits 0.11 box widths (sd) off the box's centre across, 0.027 off
    the landmarks' mean (0.025 and 0.017 down)."""
    return faces[:, 4:14].reshape(-1, 5, 2).mean(axis=1)


def turned(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """`image` turned counter-clockwise by `angle` degrees about its centre, on a canvas that holds
    all of it, and the 2x3 transform from that copy's pixels back to the image's."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    side_w, side_h = round(h * sin + w * cos), round(h * cos + w * sin)
    m[:, 2] += ((side_w - w) / 2, (side_h - h) / 2)
    copy = cv2.warpAffine(image, m, (side_w, side_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return copy, cv2.invertAffineTransform(m)


def one_per_face(candidates: np.ndarray) -> np.ndarray:
    """Rows (x, y, w, h, angle, score) less those on a face a surer row already holds."""
    kept: list[np.ndarray] = []
    for c in candidates[np.argsort(-candidates[:, 5])]:
        centre = c[:2] + c[2:4] / 2
        if all(np.linalg.norm(centre - k[:2] - k[2:4] / 2) >= SAME_FACE * min(c[2], k[2]) for k in kept):
            kept.append(c)
    return np.array(kept, np.float32).reshape(-1, 6)


class YuNetDetector:
    """`detect(gray)` -> (K, 5) candidates x, y, w, h, angle in frame pixels, largest first
    (tracker.detector.Detector).

    `max_side`: the frame is shrunk so its longer side is at most this before detection (speed:
    one pass on 320x211 ~8 ms, on 640x422 ~38 ms, one core); `score`: YuNet's least score for a face;
    `always_turn`: every search also looks in the turned copies (TURNS), not only a thorough one.
    """

    # Its boxes -> the Kaggle crop (tracker.detector.Detector), measured on ytf68 by
    # `python -m train calibrate-box --detector yunet` (3156 of 3156 faces found): the medians; their
    # spread (sd) 0.024 and 0.015 of the box for the centre, 0.063 for the scale.
    box_center = (0.505, 0.429)
    box_scale = 0.998

    @classmethod
    def for_images(cls) -> YuNetDetector:
        """Still images: time is no object, so a finer search, turned copies included."""
        return cls(max_side=640, always_turn=True)

    def __init__(self, model: str | Path = MODEL, max_side: int = 320, score: float = 0.5,
                 always_turn: bool = False) -> None:
        self.max_side, self.score, self.always_turn = max_side, score, always_turn
        self._net = _load(Path(model))
        self._net.setScoreThreshold(score)
        # One network, called from the tracker's worker thread and from its main one.
        self._lock = threading.Lock()

    def close(self) -> None:
        """Nothing to let go: it has no threads of its own."""

    def _faces(self, bgr: np.ndarray) -> np.ndarray:
        """(N, 15) YuNet rows (box, five landmarks, score) in `bgr`'s pixels, padded to MIN_INPUT. (A
        face filling its input is found: fixture faces cropped tight to 48 px, 50 of 51.)"""
        h, w = bgr.shape[:2]
        if min(h, w) < MIN_INPUT:
            bgr = cv2.copyMakeBorder(bgr, 0, max(0, MIN_INPUT - h), 0, max(0, MIN_INPUT - w),
                                     cv2.BORDER_CONSTANT, value=(128, 128, 128))
        with self._lock:
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = self._net.detect(bgr)
        return np.zeros((0, 15), np.float32) if faces is None else faces

    def _candidates(self, bgr: np.ndarray, turn: float) -> np.ndarray:
        """(N, 6) rows x, y, w, h, angle, score in `bgr`'s pixels, from a copy turned by `turn`."""
        if turn == 0:
            faces = self._faces(bgr)
            centres = face_centre(faces)
        else:
            copy, back = turned(bgr, turn)
            faces = self._faces(copy)
            centres = face_centre(faces) @ back[:, :2].T + back[:, 2]
        # The box of the face turned upright by the angle: its centre in the frame, its size as found.
        boxes = np.c_[centres - faces[:, 2:4] / 2, faces[:, 2:4]]
        return np.c_[boxes, turn + eye_angle(faces), faces[:, 14]].astype(np.float32)

    def _look(self, bgr: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Candidate row `c` looked at again in a patch turned by its angle: the row with that look's
        box (of the face nearer upright) and angle, or `c` where it sees no face there."""
        zoom = LOOK_FACE / max(c[2], c[3])
        centre = c[:2] + c[2:4] / 2
        m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(c[4]), float(zoom))
        m[:, 2] += LOOK_FACE - 0.5 - centre  # the candidate's centre at the patch's
        patch = cv2.warpAffine(bgr, m, (2 * LOOK_FACE, 2 * LOOK_FACE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        faces = self._faces(patch)
        distance = np.linalg.norm(face_centre(faces) - (LOOK_FACE - 0.5), axis=1)
        if len(faces) == 0 or distance.min() > SAME_FACE * LOOK_FACE:
            return c
        f = faces[np.argmin(distance)]
        back = cv2.invertAffineTransform(m)
        centre, size = back[:, :2] @ face_centre(f[None])[0] + back[:, 2], f[2:4] / zoom
        return np.array([*(centre - size / 2), *size, c[4] + EYE_GAIN * eye_angle(f[None])[0], c[5]], np.float32)

    def detect(self, gray: np.ndarray, region: tuple[int, int, int, int] | None = None, both: bool = False,
               routine: bool = False) -> Box:
        """Candidates in the whole frame, or only in `region` (x0, y0, x1, y1) (frame pixels either
        way). `both`, or `always_turn`: the turned copies are searched too, unless the look is
        `routine` (a video's periodic check: one pass finds faces tilted up to ~30 degrees)."""
        h, w = gray.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        x0 = y0 = 0
        if region is not None:
            x0, y0, x1, y1 = (int(v) for v in region)
            gray = gray[max(y0, 0):y1, max(x0, 0):x1]
            x0, y0 = max(x0, 0), max(y0, 0)
            if gray.size == 0:
                return no_candidates()
        if scale < 1:
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        turns = (0.0, *TURNS) if (both or self.always_turn) and not routine else (0.0,)
        found = one_per_face(np.concatenate([self._candidates(bgr, t) for t in turns]))
        for _ in range(LOOKS):
            found = np.array([self._look(bgr, c) for c in found], np.float32).reshape(-1, 6)
        if len(found) == 0:
            return no_candidates()
        found[:, :2] -= (BOX_GROW - 1) / 2 * found[:, 2:4]
        found[:, 2:4] *= BOX_GROW
        boxes = found[:, :5] * np.array([1 / scale] * 4 + [1], np.float32) + np.array([x0, y0, 0, 0, 0], np.float32)
        return boxes[np.argsort(-boxes[:, 2], kind="stable")]

    def contains_face(self, patch: np.ndarray, face_side: float) -> bool:
        """Whether a face whose box is about `face_side` pixels wide is in this small upright patch."""
        sides = BOX_GROW * self._faces(cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR))[:, 2]
        return bool(np.any((sides > 0.6 * face_side) & (sides < 1.6 * face_side)))
