"""Uploaded audio (melody prompt, continuation clip, Demucs input): checked, capped, stored under server ids.

A file is accepted only if its content (never its name or MIME type) is WAV, FLAC, MP3 or Ogg audio
that decodes completely within the limits of its purpose; the decoding runs in a sandboxed child
process (:mod:`.audio.sandbox`), at upload time and again when a job reads the file. It is stored as
``static/uploads/<32 hex>.<ext of the sniffed container>`` with a sidecar JSON keeping the original
name as metadata only. Jobs refer to uploads by id, never by a client path or URL.
"""
from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .audio import sandbox
from .engines.stemsplit import AudioSource
from .fileio import atomic_write_json, read_json, temp_file
from .protocol import UPLOAD_ID
from .storage import UnsafeName, safe_child

log = logging.getLogger(__name__)

#: Longest accepted audio per purpose, in seconds.
MAX_SECONDS = {"melody": 300.0, "continuation": 600.0, "demucs": 1200.0}
#: Decoded samples allowed per second of the limit: stereo at 48 kHz. A file with more channels or a higher
#: rate gets proportionally fewer seconds, so memory stays bounded whatever the header says.
SAMPLES_PER_SECOND = 2 * 48000


def limits_for(purpose: str) -> sandbox.Limits:
    """The decoding limits of one upload purpose (time allowed grows with the accepted length)."""
    seconds = MAX_SECONDS[purpose]
    return sandbox.Limits(max_seconds=seconds, max_samples=int(seconds * SAMPLES_PER_SECOND),
                            timeout=20.0 + seconds / 20.0)


class UploadError(ValueError):
    """An upload that is refused; ``status`` is the HTTP status to answer with, ``kind`` the UI's error code."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_audio") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class UploadInfo:
    """A stored upload and what the probe found."""

    id: str
    name: str
    purpose: str
    format: str
    sample_rate: int
    channels: int
    duration: float

    def public(self) -> dict:
        """Describe the upload for the browser (``filePath`` keeps the original app's field)."""
        return {**asdict(self), "filePath": f"static/uploads/{self.id}"}


class UploadStore:
    """The uploads folder, addressed by server-generated ids."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, stream: IO[bytes], original_name: str, purpose: str) -> UploadInfo:
        """Store an uploaded file after decoding it in the sandbox; nothing is left behind when it is refused."""
        if purpose not in MAX_SECONDS:
            raise UploadError(f"unknown upload purpose {purpose!r}", kind="invalid_request")
        with temp_file(self.folder) as (handle, tmp_path):
            size = _copy(stream, handle)
        sidecar: Path | None = None
        try:
            if size == 0:
                raise UploadError("the file is empty", kind="empty_file")
            try:
                probe = sandbox.inspect(tmp_path, limits_for(purpose))
            except sandbox.UnsafeAudio as exc:
                raise UploadError(str(exc)) from None
            upload_id = f"{uuid.uuid4().hex}.{probe.extension}"
            meta = UploadInfo(upload_id, _display(original_name), purpose, probe.extension,
                              probe.sample_rate, probe.channels, round(probe.duration, 3))
            # Sidecar first: the audio file appearing is what makes the upload usable.
            sidecar = self.folder / f"{upload_id}.json"
            atomic_write_json(sidecar, asdict(meta))
            os.replace(tmp_path, self.folder / upload_id)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            if sidecar is not None:
                sidecar.unlink(missing_ok=True)
            raise
        if probe.nonfinite:
            log.warning("upload %s: %d NaN/Inf samples will be replaced with 0", upload_id, probe.nonfinite)
        return meta

    def path(self, upload_id: object) -> Path:
        """The stored file of an upload id, resolved strictly inside the uploads folder."""
        if not isinstance(upload_id, str) or not UPLOAD_ID.match(upload_id):
            raise UnsafeName("invalid upload id")
        return safe_child(self.folder, upload_id)

    def info(self, upload_id: str) -> UploadInfo | None:
        """The stored metadata of an upload."""
        try:
            self.path(upload_id)
        except UnsafeName:
            return None
        data = read_json(self.folder / f"{upload_id}.json")
        return UploadInfo(**data) if isinstance(data, dict) else None

    def read(self, upload_id: str) -> tuple[np.ndarray, int]:
        """Decode an upload in the sandbox to float32 ``[C, T]`` at its own rate: NaN/Inf zeroed, peak <= 1."""
        try:
            path = self.path(upload_id)
        except UnsafeName:
            raise UploadError("the uploaded file is gone; upload it again", kind="not_found") from None
        meta = self.info(upload_id)
        try:
            audio, rate, _ = sandbox.decode(path, limits_for(meta.purpose if meta else "demucs"), self.folder)
        except sandbox.UnsafeAudio as exc:
            raise UploadError(str(exc)) from None
        return audio, rate

    @contextlib.contextmanager
    def decoded(self, upload_id: str) -> Iterator[AudioSource]:
        """Decode an upload in the sandbox to a raw scratch file, read in pieces by a split (bounded memory)."""
        try:
            path = self.path(upload_id)
        except UnsafeName:
            raise UploadError("the uploaded file is gone; upload it again") from None
        meta = self.info(upload_id)
        try:
            with sandbox.decode_to_file(path, limits_for(meta.purpose if meta else "demucs"),
                                        self.folder) as (raw, probe):
                yield AudioSource(str(raw), probe.sample_rate, probe.channels,
                                  1.0 / probe.peak if probe.peak > 1.0 else 1.0)
        except sandbox.UnsafeAudio as exc:
            raise UploadError(str(exc)) from None

    def display_name(self, upload_id: str | None) -> str | None:
        """The original file name of an upload (for the JSON and the UI), or None."""
        if upload_id is None:
            return None
        meta = self.info(upload_id)
        return meta.name if meta else upload_id


def _copy(source: IO[bytes], target: IO[bytes], chunk: int = 1 << 20) -> int:
    """Copy a stream and return the byte count."""
    total = 0
    while block := source.read(chunk):
        target.write(block)
        total += len(block)
    return total


def _display(name: str) -> str:
    """Keep the original file name for display only: printable, no folders, capped."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in "\u202e\u202d")
    return cleaned[:120] or "audio"
