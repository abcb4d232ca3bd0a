"""The data files shipped inside train/ (paths only: the command line shows them without loading anything)."""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
# Per-point offsets of ytf68's labels from human labels (train.conventions; `teacher-map` measures them).
OFFSETS_FILE = HERE / "ytf68_offsets.json"
# The teacher's learned 478 -> 15 map (train.teacher; `teacher-map` fits it).
MAP_FILE = HERE / "teacher_map.npz"
