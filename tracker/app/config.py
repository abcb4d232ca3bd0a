"""What a run is asked to do: the command line's options, once parsed (run_tracker.py builds it)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrackerSettings:
    """How the tracker is built; a folder run's workers keep one tracker per distinct settings."""

    weights: str | None = None  # None: the shipped weights
    device: str = "auto"
    smooth: bool = True
    max_faces: int = 10
    detector: str = "haar"  # a name in tracker.detectors.DETECTORS


@dataclass(frozen=True)
class RunConfig:
    """One input (`camera`, `video` or `image`: a file, or a folder), its outputs and how to run it."""

    camera: int | None = None
    video: str | None = None
    image: str | None = None
    output: str | None = None  # annotated video, image or folder
    csv: str | None = None  # "-": standard output
    display: bool = True  # the window (where there is a display)
    profile: bool = False  # mean ms per stage at the end
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    workers: int = 1  # a folder of videos: videos processed at once
    ray: str | None = None  # a folder of videos on Ray: an address, or "local"
    retry_failed: bool = False

    @property
    def batch(self) -> bool:
        """A folder of videos (tracker/app/batch.py)."""
        return bool(self.video) and os.path.isdir(self.video)
