"""The server's side of the worker process: start it, make calls, notice when it dies and start a new one.

Calls run one at a time. While a call runs, the supervisor relays the worker's callbacks to the
server's callables; if one of them raises (the user cancelled), the worker is told to stop at its next
step and the same exception is raised here once it has. If the worker process dies, the call raises
:class:`WorkerDied` with a reason a person understands, and the next call starts a fresh worker; a
worker that dies while starting is retried with back-off and, after a few failures in a row, reported
instead of restarted forever.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from . import child
from .child import WorkerSettings
from .wire import CallbackRef, RemoteFailure

log = logging.getLogger(__name__)

#: Seconds a new worker may take to say it is ready (it imports numpy and the app, not torch).
START_TIMEOUT = 120.0
#: Starts that may fail in a row before the worker is reported unavailable.
MAX_START_FAILURES = 3
#: Seconds to wait before the n-th restart after a failed start (then the last value).
BACKOFF_SECONDS = (1.0, 2.0, 4.0)
#: How often the supervisor checks that the worker is still alive while it waits for a message.
POLL_SECONDS = 0.5


class WorkerDied(RuntimeError):
    """The worker process ended during a call; the message says why, in words."""


class WorkerUnavailable(RuntimeError):
    """The worker process could not be started, several times in a row."""


def death_reason(exitcode: int | None, activity: str) -> str:
    """Explain how the worker ended, from its exit code and what it was doing."""
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        if name == "SIGKILL":
            return (f"the worker was killed by the system ({name}), most likely out of memory while {activity}; "
                    "try a smaller model or a shorter duration")
        return f"the worker crashed ({name}) while {activity}"
    return f"the worker stopped unexpectedly (exit code {exitcode}) while {activity}"


class WorkerProcess:
    """One long-lived worker process at a time, started on demand and replaced when it dies."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.RLock()
        self._process: BaseProcess | None = None
        self._commands: Connection | None = None
        self._events: Connection | None = None
        self._call_ids = 0
        self._start_failures = 0
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running worker's process id, if one runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def call(self, target: str, method: str, *args: Any, activity: str = "working") -> Any:
        """Run ``target.method(*args)`` in the worker; callable arguments are called back here.

        Raises:
            WorkerDied: the worker process ended during the call.
            WorkerUnavailable: no worker could be started.
            Exception: what the method raised in the worker (rebuilt), or what a callback raised here.
        """
        with self._lock:
            commands, events = self._ensure_running()
            self._call_ids += 1
            call_id = self._call_ids
            callbacks = [arg for arg in args if callable(arg)]
            refs = iter(range(len(callbacks)))
            sent = tuple(CallbackRef(next(refs)) if callable(arg) else arg for arg in args)
            try:
                commands.send(("call", call_id, target, method, sent, {}))
            except OSError:  # it died since it was last seen alive
                raise WorkerDied(death_reason(self._reap(), activity)) from None
            return self._await(call_id, callbacks, events, commands, activity)

    def _await(self, call_id: int, callbacks: list[Callable], events: Connection, commands: Connection,
               activity: str) -> Any:
        """Relay callbacks until the call ends; a callback's exception stops the call, then is raised."""
        stopped_by: BaseException | None = None
        while True:
            message = self._receive(events, activity)
            kind = message[0]
            if kind == "callback" and message[1] == call_id and stopped_by is None:
                try:
                    callbacks[message[2]](*message[3])
                except BaseException as exc:  # noqa: BLE001 - raised again once the worker has stopped
                    stopped_by = exc
                    with contextlib.suppress(OSError):  # a worker that died is noticed by the next receive
                        commands.send(("cancel", call_id))
            elif kind in ("return", "raise") and message[1] == call_id:
                if stopped_by is not None:
                    raise stopped_by
                if kind == "raise":
                    failure: RemoteFailure = message[2]
                    raise failure.rebuild()
                return message[2]

    def _receive(self, events: Connection, activity: str) -> tuple:
        """The next event; WorkerDied when the worker ends before sending one."""
        while True:
            try:
                if events.poll(POLL_SECONDS):
                    return events.recv()
            except (EOFError, OSError):
                pass
            else:
                if self._process is not None and self._process.is_alive():
                    continue
            raise WorkerDied(death_reason(self._reap(), activity))

    def _ensure_running(self) -> tuple[Connection, Connection]:
        """The channel to a ready worker, starting one (with back-off after failed starts) when needed."""
        if self._process is not None and self._process.is_alive() and self._commands and self._events:
            return self._commands, self._events
        if self._process is not None:
            self._reap()
        while True:
            if self._start_failures >= MAX_START_FAILURES:
                raise WorkerUnavailable(f"the worker process failed to start {self._start_failures} times in a row; "
                                        "see the server's log, then restart the server")
            if self._start_failures:
                time.sleep(BACKOFF_SECONDS[min(self._start_failures, len(BACKOFF_SECONDS)) - 1])
            try:
                return self._spawn()
            except WorkerDied as exc:
                self._start_failures += 1
                log.error("the worker process did not start (%d in a row): %s", self._start_failures, exc)

    def _spawn(self) -> tuple[Connection, Connection]:
        """Start a worker and wait for its ``ready``; the test hooks apply to the first worker only."""
        settings = replace(self.settings, pause_at=None, abort_at=None) if self.starts else self.settings
        commands_in, commands_out = self._context.Pipe(duplex=False)
        events_in, events_out = self._context.Pipe(duplex=False)
        process = self._context.Process(target=child.main, args=(commands_in, events_out, settings),
                                        name="audiocraft-webui-worker", daemon=True)
        process.start()
        # Only the worker keeps its ends: its pipe then ends for us when it dies, and for it when we do.
        commands_in.close()
        events_out.close()
        self._process, self._commands, self._events = process, commands_out, events_in
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            message = self._receive(events_in, "starting")
            if message[0] == "ready":
                self._start_failures = 0
                log.info("worker process started (pid %d)", message[1])
                return commands_out, events_in
        self.stop()
        raise WorkerDied(f"the worker did not become ready within {START_TIMEOUT:.0f} s")

    def _reap(self) -> int | None:
        """Forget a worker that ended; its exit code."""
        process, self._process = self._process, None
        for connection in (self._commands, self._events):
            if connection is not None:
                connection.close()
        self._commands = self._events = None
        if process is None:
            return None
        process.join(5)
        return process.exitcode

    def stop(self) -> None:
        """End the worker (it frees every model with its process); the next call starts a new one."""
        with self._lock:
            if self._process is None:
                return
            if self._commands is not None:
                with contextlib.suppress(OSError):
                    self._commands.send(("stop",))
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
            self._reap()
