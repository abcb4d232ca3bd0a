"""The live window: a sink that shows each annotated frame and lets q or Esc end the run."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2

from tracker.pipeline import Face, Frame

TITLE = "facial keypoints (q or Esc quits)"
QUIT_KEYS = (ord("q"), 27)


def display_available() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink:
    """Shows frames as they come, on the frame loop's thread (OpenCV's windows want that thread).
    `each_key`: wait for a key after each frame (photos); `stopped` once q or Esc is pressed."""

    pictures = True
    path: Path | None = None
    temporary: Path | None = None
    written = 0

    def __init__(self, each_key: bool = False) -> None:
        self.wait_ms = 0 if each_key else 1
        self.stopped = False

    def write(self, frame: Frame, faces: list[Face]) -> None:
        cv2.imshow(TITLE, frame.image)
        if cv2.waitKey(self.wait_ms) & 0xFF in QUIT_KEYS:
            self.stopped = True

    def close(self) -> None:
        cv2.destroyAllWindows()
