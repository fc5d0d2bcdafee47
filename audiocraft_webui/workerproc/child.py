"""The worker process: it owns the GPU, holds the models between jobs and runs one call at a time.

It is started with ``multiprocessing``'s spawn method (the same on Linux, macOS and Windows) and talks
only through the channel of :mod:`.wire`. A reader thread takes the commands, so a cancel reaches a call
while it runs; if the server goes away (its pipe ends) the worker exits at once, so no orphan keeps the
GPU. The engine's tokens stay here between a generation and its Multi-Band Diffusion decode: the
server gets an opaque handle instead, and never imports torch.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from .. import compat, heap
from ..console import quiet_libraries
from ..engines import GenerationOutput, create_engine
from ..engines.demucs import DemucsSplitter
from ..hooks import PauseAt
from .wire import CallbackRef, RemoteFailure

#: Shortest gap between two progress values sent to the server. A step of the tiny test model takes about
#: a millisecond, and sending every one cost about 5 % of its job; the server passes on 10 a second anyway.
PROGRESS_INTERVAL_S = 0.02

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """What the worker process is built from (picklable: it crosses to the new process).

    Attributes:
        pause_at, abort_at: test hooks; the worker blocks (``<point>[:<n>]``) or aborts the process
            (``os.abort()``, a native crash) when it reaches the point half-way through a call.
    """

    engine: str
    device: str
    threads: int
    demucs_model: str
    demucs_shifts: int
    demucs_overlap: float
    decoder: str = "auto"
    cpu_weights: str = "fp32"
    log_level: int = logging.INFO
    pause_at: str | None = None
    abort_at: str | None = None


class Cancelled(Exception):
    """The server asked to stop the running call."""


class Tokens:
    """The generated tokens of the last generation, kept in the worker behind a handle."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._kept: tuple[int, Any] | None = None

    def keep(self, output: GenerationOutput) -> GenerationOutput:
        """The output with its tokens replaced by a handle (the tokens stay here)."""
        if output.tokens is None:
            return output
        handle = next(self._counter)
        self._kept = (handle, output.tokens)
        return replace(output, tokens=handle)

    def restore(self, output: GenerationOutput) -> GenerationOutput:
        """The output with its tokens back, when the handle is the last one kept."""
        if self._kept is not None and output.tokens == self._kept[0]:
            return replace(output, tokens=self._kept[1])
        return replace(output, tokens=None)


class Worker:
    """The objects the calls run on, and the channel back to the server."""

    def __init__(self, settings: WorkerSettings, events: Connection) -> None:
        self.events = events
        self.engine = create_engine(settings.engine, device=settings.device, threads=settings.threads,
                                    decoder=settings.decoder, cpu_weights=settings.cpu_weights)
        self.splitter = DemucsSplitter(settings.demucs_model, device=settings.device, shifts=settings.demucs_shifts,
                                       overlap=settings.demucs_overlap)
        self.tokens = Tokens()
        self.cancelled: set[int] = set()
        self._pause = PauseAt.parse(settings.pause_at)
        self._abort_at = settings.abort_at
        self._send_lock = threading.Lock()

    def send(self, message: tuple) -> None:
        """Send one event (calls and the reader's pings never interleave a message)."""
        with self._send_lock:
            self.events.send(message)

    def run(self, call_id: int, target: str, method: str, args: tuple, kwargs: dict) -> None:
        """Run one call and send how it ended; nothing it raises ends the worker."""
        try:
            value = self._invoke(call_id, target, method, args, kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure is the call's, reported to the server
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.send(("raise", call_id, RemoteFailure("Cancelled", "") if isinstance(exc, Cancelled)
                       else RemoteFailure.of(exc)))
            self.engine.free_memory()
        else:
            self.send(("return", call_id, value))
        finally:
            self.cancelled.discard(call_id)

    def _invoke(self, call_id: int, target: str, method: str, args: tuple, kwargs: dict) -> Any:
        """Call the method with callbacks that report back; tokens stay here."""
        owner = self.engine if target == "engine" else self.splitter
        args = tuple(self._callback(call_id, arg, method) if isinstance(arg, CallbackRef) else arg for arg in args)
        if method == "decode_mbd":
            args = (self.tokens.restore(args[0]), *args[1:])
        if method == "get":
            return getattr(owner, args[0])
        value = getattr(owner, method)(*args, **kwargs)
        return self.tokens.keep(value) if isinstance(value, GenerationOutput) else value

    def _callback(self, call_id: int, ref: CallbackRef, method: str) -> Callable[..., None]:
        """A stand-in for the server's callable: checks for a cancel, reaches the test hooks, reports back."""
        point = {"generate": "generating", "split": "separating"}.get(method)
        last_progress = -PROGRESS_INTERVAL_S

        def report(*args: Any) -> None:
            nonlocal last_progress
            if call_id in self.cancelled:
                raise Cancelled()
            progress = len(args) == 1 and isinstance(args[0], float)
            if point and ref.index == 0 and args and isinstance(args[0], float) and args[0] >= 0.5:
                if point == self._abort_at:
                    log.warning("test abort point %r reached; aborting the worker process", point)
                    os.abort()
                self._pause(point)
            if progress and args[0] < 1.0:
                now = time.monotonic()
                if now - last_progress < PROGRESS_INTERVAL_S:
                    return
                last_progress = now
            self.send(("callback", call_id, ref.index, args))

        return report


def main(commands: Connection, events: Connection, settings: WorkerSettings) -> None:
    """Entry point of the worker process (``multiprocessing`` target)."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    compat.install()
    heap.tune_allocator()
    worker = Worker(settings, events)
    worker.engine.prepare_thread()
    calls: queue.Queue[tuple | None] = queue.Queue()
    threading.Thread(target=_read_commands, args=(commands, calls, worker), name="commands", daemon=True).start()
    worker.send(("ready", os.getpid()))
    while (call := calls.get()) is not None:
        worker.run(*call)


def _read_commands(commands: Connection, calls: queue.Queue, worker: Worker) -> None:
    """Route commands: calls to the main thread, cancels to the running call; exit when the server is gone."""
    try:
        while True:
            message = commands.recv()
            if message[0] == "call":
                calls.put(message[1:])
            elif message[0] == "cancel":
                worker.cancelled.add(message[1])
            else:
                calls.put(None)
                return
    except (EOFError, OSError):
        log.info("the server has stopped; the worker process stops too")
        os._exit(1)
