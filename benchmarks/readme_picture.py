"""The picture at the top of the README: one frame of the sample clip with the tracker's points.

    python -m benchmarks.readme_picture [--frame 150] [--scale 2] [--output docs/annotated_frame.jpg]

Runs the tracker over the clip's first frames (so that the points shown are tracked and smoothed, as
in a real run) and draws the chosen frame, enlarged `scale` times so that the points read on a page.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2

from tracker.app.drawing import draw_faces
from tracker.app.sources import read_frames
from tracker import Tracker

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "samples" / "talking_face.mp4"


def picture(frame_index: int, scale: float, clip: Path = CLIP):
    """The annotated frame (BGR, enlarged), or None when no face is tracked on it."""
    frames, fps = read_frames(clip, frame_index + 1)
    tracker = Tracker(device="cpu")
    try:
        for i, frame in enumerate(frames):
            faces = tracker.process(frame, i / fps)
    finally:
        tracker.close()
    if not faces:
        return None
    big = cv2.resize(frames[-1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    scaled = [dataclasses.replace(f, box=f.box * scale, points=f.points * scale) for f in faces]
    return draw_faces(big, scaled)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frame", type=int, default=150, help="frame of the sample clip to draw (default 150)")
    ap.add_argument("--scale", type=float, default=2.0, help="enlargement (default 2: 800x600)")
    ap.add_argument("--output", type=Path, default=ROOT / "docs" / "annotated_frame.jpg")
    args = ap.parse_args(argv)
    image = picture(args.frame, args.scale)
    if image is None:
        print(f"error: no face tracked on frame {args.frame}; pick another --frame", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.output), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.output} ({image.shape[1]}x{image.shape[0]}, {args.output.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
