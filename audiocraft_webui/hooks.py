"""Test pause points, handed to the objects that reach them (the track store, the worker's progress).

A pause is a callable taking the point's name. In production it is :func:`no_pause`. The crash
tests start a server with ``AUDIOCRAFT_WEBUI_TEST_PAUSE_AT=<point>`` (or ``<point>:<n>`` for the
n-th time the point is reached), which the config reads as ``TEST_PAUSE_AT``; the app then uses a
:class:`PauseAt` that logs ``test pause point '<point>' reached`` and blocks the thread there until
``tests/test_crash.py`` kills the process. Points: ``generating`` / ``separating`` (half-way through
a generation / a stem split), ``commit_json`` (a track's audio is in place, its JSON not yet) and
``trash`` (a delete or clear-all has moved its first file).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

#: The environment variable the crash tests set (the config key is ``TEST_PAUSE_AT``).
PAUSE_ENV = "AUDIOCRAFT_WEBUI_TEST_PAUSE_AT"

Pause = Callable[[str], None]

log = logging.getLogger(__name__)


def no_pause(point: str) -> None:
    """Go on at once: what every point does outside the crash tests."""


class PauseAt:
    """Block the thread that reaches ``point`` for the ``nth`` time, forever (until the process is killed)."""

    def __init__(self, point: str, nth: int = 1) -> None:
        self.point = point
        self._left = nth
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, spec: str | None) -> Pause:
        """Build the pause for a ``<point>[:<n>]`` setting; :func:`no_pause` when it is empty."""
        if not spec:
            return no_pause
        point, _, nth = spec.partition(":")
        return cls(point, int(nth or 1))

    def __call__(self, point: str) -> None:
        """Return at once unless this is the point, the n-th time."""
        if point != self.point:
            return
        with self._lock:
            self._left -= 1
            if self._left > 0:
                return
        log.warning("test pause point %r reached; waiting to be killed", point)
        threading.Event().wait()
