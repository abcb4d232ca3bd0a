"""Images as a source: one file or a folder's, read at their own depth and channels, turned upright by EXIF."""
from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tracker.app.held_stderr import held_back_stderr
from tracker.app.sources import InputError, check_file
from tracker.messages import warn
from tracker.pipeline import Frame


def exif_orientation(exif: bytes) -> int:
    """The Orientation tag (1-8; 1 = upright) of an EXIF block (a TIFF header and IFD0), 1 when absent
    or unreadable."""
    exif = exif.removeprefix(b"Exif\x00\x00")  # the JPEG APP1 marker, where a reader leaves it on
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHIH", exif, ifd + 2 + 12 * i)
            if tag == 0x0112 and kind == 3:  # Orientation, a SHORT
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The image as EXIF `orientation` says it is to be shown: 2-4 mirror it or turn it half way,
    5-8 swap its axes first (6: turn it a quarter clockwise; 8: anticlockwise)."""
    if orientation >= 5:
        image = image.swapaxes(0, 1)
    if orientation in (2, 3, 6, 7):
        image = image[:, ::-1]
    if orientation in (3, 4, 7, 8):
        image = image[::-1]
    return np.ascontiguousarray(image)


def read_image(path: Path) -> tuple[np.ndarray | None, str]:
    """An image file at its own depth and channels (16-bit, alpha), turned upright by its EXIF
    orientation (IMREAD_UNCHANGED alone would ignore it: a phone photo would lie on its side), and
    what its decoder complained of ("" where nothing: a damaged file may still decode, in part)."""
    with held_back_stderr() as said:
        try:
            image, kinds, blocks = cv2.imreadWithMetadata(str(path), flags=cv2.IMREAD_UNCHANGED)
        except cv2.error:  # a codec built in but switched off (OpenEXR) raises instead of failing
            image = None
    complaint = said[-1].strip() if said else ""
    if image is None or image.size == 0:
        return None, complaint
    for kind, block in zip(kinds, blocks):
        if kind == cv2.IMAGE_METADATA_EXIF:
            return upright(image, exif_orientation(np.asarray(block).tobytes())), complaint
    return image, complaint


class ImageSource:
    """One image, or every image of a folder and its subfolders (sorted; hidden files and folders,
    and the folder `skip`, left out); files that are not images are skipped with a warning."""

    def __init__(self, path: str | Path, skip: Path | None = None) -> None:
        self.path = Path(path)
        check_file(self.path, "image or folder")
        if self.path.is_dir():
            skip = skip.resolve() if skip is not None else None
            self.files = sorted(
                p for p in self.path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
                and (skip is None or skip not in p.resolve().parents)
            )
            if not self.files:
                raise InputError(f"{self.path}: the folder has no files")
            self._first: tuple[np.ndarray | None, str] | None = None
        else:
            self.files = [self.path]
            # One image is read now: unreadable, it fails the run before any output is opened.
            t = time.perf_counter()
            self._first = read_image(self.path)
            self._first_ms = (time.perf_counter() - t) * 1000
            if self._first[0] is None:
                raise InputError(f"{self.path}: not a readable image")
        self.fps = 0.0

    def __iter__(self) -> Iterator[Frame]:
        index = 0  # images read: a skipped file takes no frame number
        for path in self.files:
            t = time.perf_counter()
            image, complaint = self._first if self._first is not None else read_image(path)
            if image is None:
                warn(f"{path}: skipped (not a readable image)")
                continue
            if complaint:
                warn(f"{path}: damaged ({complaint}); used what decodes")
            decode_ms = self._first_ms if self._first is not None else (time.perf_counter() - t) * 1000
            yield Frame(image, index, None, str(path), decode_ms)  # a photo has no time
            index += 1

    def close(self) -> None:
        pass
