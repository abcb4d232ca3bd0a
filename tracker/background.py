"""Detector work on a second core, collected at a fixed later frame.

The Haar passes (looking for new faces, checking that each track is still a face) take 10-20 ms on a
640x480 frame, several times the rest of a frame's work. While faces are tracked nothing waits on
them, so they run on a worker thread (OpenCV releases the GIL) and their answers are used `lag`
frames later. Collecting at a fixed frame, not "whenever ready", keeps a run's output the same on a
fast or a slow machine: the caller blocks at the due frame if the worker is late.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BackgroundJobs:
    """`submit(due, fn, *args, tag=...)` now; `collect(frame)` -> [(tag, result, seconds)] of the
    jobs due by `frame`, in submission order."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # started on first use: still images never need it
        self._pending: deque[tuple[int, Any, Future]] = deque()

    def submit(self, due: int, fn: Callable[..., Any], *args: Any, tag: Any = None) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detector")
        self._pending.append((due, tag, self._pool.submit(_timed_call, fn, *args)))

    def collect(self, frame: int) -> list[tuple[Any, Any, float]]:
        # Jobs are due at different lags (a quick search for a face coming into view, a slow routine
        # one): a late-due job must not hold back one submitted after it and due sooner.
        due = [job for job in self._pending if job[0] <= frame]
        self._pending = deque(job for job in self._pending if job[0] > frame)
        done = []
        for _, tag, future in due:
            result, seconds = future.result()
            done.append((tag, result, seconds))
        return done

    def due_frames(self, tag: Any) -> list[int]:
        """The frames at which the pending jobs with this tag will be collected."""
        return [due for due, t, _ in self._pending if t == tag]

    def clear(self) -> None:
        """Drop every pending answer (the jobs still finish, unread)."""
        self._pending.clear()

    def close(self) -> None:
        self.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _timed_call(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    return fn(*args), time.perf_counter() - t
