"""The frames between a video's decoder thread and the tracker: a bounded queue that wakes each side seldom."""
from __future__ import annotations

import threading
from collections import deque


class Prefetch:
    """The frames between a decoder thread and their reader: at most `size`, first in first out. A
    writer that has filled it sleeps until the reader has taken half, then decodes a burst, rather
    than waking for every frame taken (a thread switch and two hand-overs of the GIL a frame)."""

    def __init__(self, size: int) -> None:
        self.items: deque = deque()
        self.size = size
        self.changed = threading.Condition()

    def put(self, item: object, stop: threading.Event) -> bool:
        """Add `item`, waiting for room; False (not added) once `stop` is set while full."""
        with self.changed:
            while len(self.items) >= self.size:
                if stop.is_set():
                    return False
                self.changed.wait(0.1)
            self.items.append(item)
            if len(self.items) == 1:
                self.changed.notify_all()  # the reader may be waiting
        return True

    def get(self) -> object:
        with self.changed:
            while not self.items:
                self.changed.wait()
            item = self.items.popleft()
            if len(self.items) == self.size // 2:
                self.changed.notify_all()  # the writer may be waiting
            return item
