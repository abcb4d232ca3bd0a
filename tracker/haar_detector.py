"""Face boxes from a gray frame: OpenCV's Haar frontal-face cascade, run on a downscaled frame.

The rest of the tracker only sees `detect(gray) -> boxes`, so another detector can replace this one.
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np


class DetectorError(RuntimeError):
    pass


def _cascade(name: str) -> cv2.CascadeClassifier:
    data = getattr(cv2, "data", None)
    if data is None or not hasattr(cv2, "CascadeClassifier"):
        raise DetectorError(
            f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 dropped them): "
            "pip install 'opencv-python>=4.10,<5' and uninstall other opencv packages"
        )
    path = Path(data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise DetectorError(f"cannot load the Haar cascade {path}")
    return cascade


class HaarDetector:
    """`detect(gray)` -> (K, 4) float boxes x, y, w, h in frame pixels, largest first.

    `max_side`: the frame is shrunk so its longer side is at most this before detection (speed);
    `min_face`: smallest face side, as a fraction of the frame's shorter side; `scale_step`: ratio
    between the face sizes tried (smaller is finer and slower); `fallback`: try a second cascade when
    the first finds nothing (for still images).
    """

    def __init__(self, max_side: int = 320, min_face: float = 0.1, min_neighbors: int = 4, scale_step: float = 1.2,
                 fallback: bool = False) -> None:
        self.cascade = _cascade("haarcascade_frontalface_default.xml")
        # For still images: when the default cascade finds nothing, the alt2 cascade, more permissive;
        # loaded when first needed (most images never need it; loading it was ~10 ms of a photo's run).
        self.fallback = fallback
        self._alt2: cv2.CascadeClassifier | None = None
        self.max_side, self.scale_step = max_side, scale_step
        self.min_face = min_face
        self.min_neighbors = min_neighbors
        # A CascadeClassifier must not run on two threads at once (it keeps per-call buffers), and the
        # tracker calls it from its worker thread and, with nothing tracked, from the main one.
        self._lock = threading.Lock()

    def contains_face(self, patch: np.ndarray, face_side: float) -> bool:
        """Whether a face about `face_side` pixels wide is in this small upright patch (track check)."""
        patch = cv2.equalizeHist(patch)
        with self._lock:
            boxes = self.cascade.detectMultiScale(
                patch, scaleFactor=1.2, minNeighbors=2, minSize=(int(0.7 * face_side),) * 2,
                maxSize=(int(1.4 * face_side),) * 2,
            )
        return len(boxes) > 0

    def detect(self, gray: np.ndarray) -> np.ndarray:
        h, w = gray.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else gray
        min_side = max(20, int(self.min_face * min(small.shape[:2])))
        small = cv2.equalizeHist(small)
        with self._lock:
            boxes = self.cascade.detectMultiScale(small, self.scale_step, self.min_neighbors, minSize=(min_side, min_side))
            if len(boxes) == 0 and self.fallback:
                if self._alt2 is None:
                    self._alt2 = _cascade("haarcascade_frontalface_alt2.xml")
                boxes = self._alt2.detectMultiScale(small, 1.05, 2, minSize=(min_side, min_side))
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32)
        boxes = np.asarray(boxes, np.float32) / scale
        return boxes[np.argsort(-boxes[:, 2])]
