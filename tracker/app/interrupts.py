"""Stopping a run in order: SIGTERM (or a folder run's stop) becomes `Stop`, raised between frames."""
from __future__ import annotations


class Stop(BaseException):
    """An orderly stop, so outputs are closed whole. A BaseException, as KeyboardInterrupt is, so
    that no `except Exception` on the way (the weights loader) takes it for an error of its own."""


def stop_on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise Stop()
