"""Listen while it generates: a running job's preview audio goes to its listeners as it is made.

Chunks are sent to a Socket.IO room per job, which the submitting tab joins at submit time and any other
tab joins with ``watch_preview``; a late listener first gets the chunks made so far, which are kept in
memory for the running job only (bounded) and dropped when it ends. Nothing is written to disk. The
audio is the codec's, before loudness normalisation and channel duplication, as little-endian int16
interleaved by channel at the model's rate.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from . import protocol
from .jobs import Job, JobQueue, JobState
from .tasks import GenerateTask

#: Most preview bytes kept per running job for late listeners (300 s of stereo at 32 kHz is about 37 MB).
MAX_KEPT_BYTES = 64 * 1024 * 1024
_INT16_SCALE = 32767


class Rooms(Protocol):
    """The Socket.IO room operations the hub needs."""

    def enter(self, sid: str, room: str) -> None:
        """Add a client to a room."""

    def close(self, room: str) -> None:
        """Empty and forget a room."""


class Sender(Protocol):
    """The app's serialised emitter (see ``services.Emitter``)."""

    def __call__(self, event: str, payload: object, to: str | None = None) -> None:
        """Send an event to one client or room, or to everyone."""

    def held(self) -> threading.RLock:
        """The lock that orders every event the app sends."""


class PreviewError(ValueError):
    """A ``watch_preview`` that cannot be served; ``kind`` says why (not_found, finished, no_preview)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def as_json(self) -> dict:
        """The error as the ack carries it."""
        return {"type": self.kind, "field": "job_id", "message": str(self)}


def room_of(job_id: str) -> str:
    """The Socket.IO room a job's preview goes to."""
    return f"preview:{job_id}"


def pcm16(samples: np.ndarray) -> bytes:
    """float32 ``[C, T]`` in [-1, 1] as little-endian int16 interleaved by channel (``T * C`` values)."""
    scaled = np.round(np.clip(samples, -1.0, 1.0) * _INT16_SCALE)
    return np.ascontiguousarray(scaled.T).astype("<i2").tobytes()


@dataclass
class _Stream:
    """What one running job has previewed so far."""

    chunks: list[tuple[dict, int]] = field(default_factory=list)  # (payload, its PCM bytes)
    kept_bytes: int = 0
    seq: int = 0


class PreviewHub:
    """Previews of running generation jobs: published by the worker, watched by any number of tabs."""

    def __init__(self, send: Sender, rooms: Rooms, queue: JobQueue, max_kept_bytes: int = MAX_KEPT_BYTES) -> None:
        self._send = send
        self._rooms = rooms
        self._queue = queue
        self._max_kept = max_kept_bytes
        self._streams: dict[str, _Stream] = {}

    def listen(self, job_id: str, sid: str) -> None:
        """Send a job's preview to a client from now on (the submitting tab, at submit time)."""
        self._rooms.enter(sid, room_of(job_id))

    def publish(self, job: Job, start: int, samples: np.ndarray, sample_rate: int) -> None:
        """Send one chunk (float32 ``[C, T]``, ``start`` samples into the new audio) and keep it for late listeners.

        A chunk of a job the user cancelled is dropped: cancel stops the preview at once, even inside the
        decoding step that is still running.
        """
        if job.cancel_event.is_set():
            return
        task = job.task
        with self._send.held():
            stream = self._streams.setdefault(job.id, _Stream())
            pcm = pcm16(samples)
            payload = {"job_id": job.id, "seq": stream.seq, "start": start, "sample_rate": sample_rate,
                       "channels": int(samples.shape[0]), "pcm": pcm,
                       "mbd": isinstance(task, GenerateTask) and task.request.mbd}
            stream.seq += 1
            stream.chunks.append((payload, len(pcm)))
            stream.kept_bytes += len(pcm)
            while stream.kept_bytes > self._max_kept and len(stream.chunks) > 1:
                stream.kept_bytes -= stream.chunks.pop(0)[1]
            self._send(protocol.AUDIO_PREVIEW, payload, to=room_of(job.id))

    def close(self, job_id: str) -> None:
        """Forget a job's preview when it ends: its chunks are freed and its listeners released."""
        with self._send.held():
            self._streams.pop(job_id, None)
            self._rooms.close(room_of(job_id))

    def watch(self, job_id: object, sid: str) -> int:
        """Send a queued or running job's chunks so far to ``sid``, then its live ones; returns how many were sent.

        Raises:
            PreviewError: no such job, the job is over, or it is not a generation with a preview.
        """
        job = self._queue.get(job_id) if isinstance(job_id, str) else None
        if job is None:
            raise PreviewError("not_found", "no such job in the queue")
        if job.state not in (JobState.QUEUED, JobState.RUNNING):
            raise PreviewError("finished", f"this job is {job.state.value}; its track has the final audio")
        if not isinstance(job.task, GenerateTask) or not job.task.request.preview:
            raise PreviewError("no_preview", "this job makes no preview")
        with self._send.held():
            stream = self._streams.get(job.id, _Stream())
            for chunk, _ in stream.chunks:
                self._send(protocol.AUDIO_PREVIEW, chunk, to=sid)
            self._rooms.enter(sid, room_of(job.id))
        return len(stream.chunks)
