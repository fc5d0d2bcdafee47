"""The worker's message channel: what the server and the worker process say to each other.

Two one-way ``multiprocessing`` pipes carry pickled tuples, so the worker could later run elsewhere with
another transport. Server → worker (commands):

* ``("call", call_id, target, method, args, kwargs)``: run ``target.method`` (``engine`` or ``splitter``);
  every callable argument was replaced by a :class:`CallbackRef`.
* ``("cancel", call_id)``: stop that call at its next callback (within one decoding step).
* ``("stop",)``: exit after the current call.

Worker → server (events):

* ``("ready", pid)``: once, when the worker can take calls.
* ``("callback", call_id, index, args)``: the running call invoked its callable argument ``index``.
* ``("return", call_id, value)`` or ``("raise", call_id, RemoteFailure)``: how the call ended.

If the worker dies, its event pipe ends; the supervisor reads the exit code and reports why.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from ..device import DeviceError
from ..engines.base import EngineError, ModelLoadError
from ..engines.stemsplit import StemError
from ..engines.tokentap import StreamingError

#: Exceptions that cross the channel as themselves; anything else crosses as a RemoteError of its name.
KNOWN_ERRORS: dict[str, type[Exception]] = {error.__name__: error for error in (
    ModelLoadError, EngineError, StemError, StreamingError, DeviceError, MemoryError)}


@dataclass(frozen=True)
class CallbackRef:
    """Stands for a callable argument of a call; the worker calls it back through the channel."""

    index: int


class RemoteError(RuntimeError):
    """An exception raised in the worker process whose class the server does not rebuild."""


class OutOfMemoryError(RuntimeError):
    """The worker ran out of accelerator memory (named as torch names it, which the job's error report reads)."""


@dataclass(frozen=True)
class RemoteFailure:
    """An exception as it crosses the channel: its class name, message and, for an OSError, its errno."""

    kind: str
    message: str
    errno: int | None = None

    @classmethod
    def of(cls, exc: BaseException) -> RemoteFailure:
        """Describe an exception raised in the worker (an OSError keeps its errno, never its path)."""
        if isinstance(exc, OSError):
            return cls("OSError", exc.strerror or type(exc).__name__, exc.errno)
        return cls(type(exc).__name__, str(exc))

    def rebuild(self) -> Exception:
        """The exception to raise on the server's side."""
        if self.kind == "OSError":
            return OSError(self.errno or errno.EIO, self.message)
        if self.kind == "OutOfMemoryError":
            return OutOfMemoryError(self.message)
        known = KNOWN_ERRORS.get(self.kind)
        if known is not None:
            return known(self.message)
        return RemoteError(f"{self.kind}: {self.message}" if self.message else self.kind)
