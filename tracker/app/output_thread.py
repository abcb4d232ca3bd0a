"""The outputs' work on a thread of its own, in order, while the tracker goes on to the next frame."""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class OutputThread:
    """The outputs' work (drawing a frame's faces, encoding the video, formatting CSV rows) on a
    thread of its own, in the order given, while the tracker's thread goes on to the next frame: with
    an annotated video, encoding alone was ~1.2 ms of the tracker's ~2.5 ms a frame (640x480).

    `submit(fn, *args)` queues a call (waiting while `depth` are queued); an exception in one is
    raised again in the caller's thread by the next `submit` or by `close`, and the calls queued
    after it are dropped. `close()` returns once every call queued before it has run."""

    def __init__(self, depth: int = 8) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="outputs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                fn, args = item
                try:
                    fn(*args)
                except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable[..., object], *args: object) -> None:
        self._raise()
        self._queue.put((fn, args))

    def close(self) -> None:
        """Wait for every call queued so far; may be called again (after a Ctrl-C in the wait)."""
        if not self._closing:
            self._closing = True
            self._queue.put(None)
        self._thread.join()
        self._raise()
