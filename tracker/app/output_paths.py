"""Output names and folders, checked before any work: what OpenCV can write, where, and never over an input."""
from __future__ import annotations

import os
from pathlib import Path

import cv2

# The containers OpenCV's FFmpeg backend writes with codecs every build has (others, .webm or .gif,
# fail after a screenful of FFmpeg log), and the codec used in each.
VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".mov": "mp4v"}
VIDEO_NAMES = ".mp4, .avi, .mkv or .mov"


def writes_images(path: Path) -> bool:
    """Whether OpenCV writes images under this file name (it goes by the extension)."""
    try:
        return bool(path.suffix) and cv2.haveImageWriter(str(path))
    except cv2.error:  # a codec built in but switched off (OpenEXR) raises instead of answering
        return False


def check_output_name(path: Path, video: bool) -> None:
    """Refuse, before any work, an annotated video or single image under a name OpenCV cannot write."""
    if video and path.suffix.lower() not in VIDEO_FOURCC:
        raise OutputError(f"{path}: cannot write {path.suffix or 'a video without an extension'}; "
                          f"name the video {VIDEO_NAMES}")
    if not video and path.suffix and not writes_images(path):
        raise OutputError(f"{path}: OpenCV cannot write {path.suffix} images; name it .png, .jpg, .webp, .bmp or .tif")


class OutputError(RuntimeError):
    """An output that cannot be written: raised before any work is done, or when a write fails."""


def refuse_input(path: Path, inputs: list[Path]) -> None:
    """An output must never overwrite an input, however the two paths are spelled."""
    for source in inputs:
        if source.exists() and path.exists() and path.resolve() == source.resolve():
            raise OutputError(f"{path}: is also the input; choose another output path")


def check_writable(path: Path, inputs: list[Path]) -> None:
    """Fail early: the folder must exist and be writable, and the output must not be an input."""
    refuse_input(path, inputs)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{path}: cannot write there (permission denied)")
