"""The frames' hand-over between a video's decoder thread and the tracker (tracker.app.prefetch.Prefetch)."""
from __future__ import annotations

import threading
import time

from tracker.app.prefetch import Prefetch


def test_prefetch_keeps_order_and_bounds_across_threads():
    buffer, stop, most = Prefetch(6), threading.Event(), []

    def write() -> None:
        for i in range(500):
            assert buffer.put(i, stop)
            most.append(len(buffer.items))
        buffer.put(None, stop)

    writer = threading.Thread(target=write)
    writer.start()
    taken = []
    while (item := buffer.get()) is not None:
        taken.append(item)
        if item % 50 == 0:
            time.sleep(0.005)  # a slow reader: the writer fills the buffer and waits
    writer.join()
    assert taken == list(range(500)) and max(most) == 6


def test_prefetch_writer_gives_up_when_stopped_while_full():
    buffer, stop = Prefetch(2), threading.Event()
    assert buffer.put(1, stop) and buffer.put(2, stop)
    stop.set()
    started = time.monotonic()
    assert not buffer.put(3, stop)  # full and stopped: no wait for a reader that has gone
    assert time.monotonic() - started < 1
    assert buffer.get() == 1 and buffer.get() == 2
