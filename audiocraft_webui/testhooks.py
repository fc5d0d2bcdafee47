"""Test-only pause points, so the crash tests can kill a real server at an exact moment.

A server started with ``AUDIOCRAFT_WEBUI_TEST_PAUSE_AT=<point>`` (or ``<point>:<n>`` for the n-th time the
point is reached) logs ``test pause point '<point>' reached`` and blocks the thread that reaches it until
the process is killed (``tests/test_crash.py`` SIGKILLs it there and restarts it). Points: ``generating`` / ``separating`` (half-way through a
generation / a stem split), ``commit_json`` (a track's audio is in place, its JSON not yet) and
``trash`` (a delete or clear-all has moved its first file). Without the variable, which is never set
outside those tests, a point costs one string comparison.
"""
from __future__ import annotations

import logging
import os
import threading

PAUSE_ENV = "AUDIOCRAFT_WEBUI_TEST_PAUSE_AT"

log = logging.getLogger(__name__)

_PAUSE_AT, _, _NTH = (os.environ.get(PAUSE_ENV) or "").partition(":")
_hits = [int(_NTH or 1)]


def pause_point(name: str) -> None:
    """Block this thread forever if the test variable names this point (this time); return at once otherwise."""
    if name != _PAUSE_AT:
        return
    _hits[0] -= 1
    if _hits[0] > 0:
        return
    log.warning("test pause point %r reached; waiting to be killed", name)
    threading.Event().wait()
