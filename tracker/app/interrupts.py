"""Stopping a run in order: SIGTERM (or a folder run's stop) becomes `Stop`, raised between frames;
Ctrl-C stays KeyboardInterrupt. Either is remembered, for an interrupt that lands inside an extension
module's import (onnxruntime's), which reports it as an ImportError of its own."""
from __future__ import annotations

import signal

_requested = False


class Stop(BaseException):
    """An orderly stop, so outputs are closed whole. A BaseException, as KeyboardInterrupt is, so
    that no `except Exception` on the way (the weights loader) takes it for an error of its own."""


def on_signal(signum: int, frame) -> None:  # noqa: ARG001 - signal handler signature
    """SIGINT -> KeyboardInterrupt, SIGTERM -> Stop, each remembered (`stop_requested`)."""
    global _requested
    _requested = True
    raise KeyboardInterrupt() if signum == signal.SIGINT else Stop()


def stop_requested() -> bool:
    """Whether a stop was asked for since the run began: what an error raised after it really is."""
    return _requested
