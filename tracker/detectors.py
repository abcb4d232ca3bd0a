"""The face detectors a run can choose, by name (`run_tracker.py --detector NAME`, `python -m train
calibrate-box --detector NAME`). Light to import: a command line checks the name before OpenCV loads."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from tracker.detector import Detector


def haar(images: bool) -> Detector:
    from tracker.haar_detector import HaarDetector

    return HaarDetector.for_images() if images else HaarDetector()


def haar_profile(images: bool) -> Detector:
    """Haar, with OpenCV's profile cascade also searching the frame and its mirror image (heads turned
    to the side); about three times the detection time (see weights/README.md)."""
    from tracker.haar_detector import HaarDetector

    return HaarDetector.for_images(profile=True) if images else HaarDetector(profile=True)


def yunet(images: bool) -> Detector:
    from tracker.yunet_detector import YuNetDetector

    return YuNetDetector.for_images() if images else YuNetDetector()


# name -> constructor(images): the detector with its settings for still images, or for video.
DETECTORS: dict[str, Callable[[bool], Detector]] = {"haar": haar, "haar-profile": haar_profile, "yunet": yunet}
DEFAULT_DETECTOR = "haar"


def make_detector(name: str, images: bool = False) -> Detector:
    """The detector `name`, with its settings for still images (`images`) or for video."""
    if name not in DETECTORS:
        from tracker.detector import DetectorError

        raise DetectorError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name](images)
