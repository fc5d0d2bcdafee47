"""Uploaded audio (melody prompt, continuation clip, Demucs input): probed, capped, stored under server ids.

A file is accepted only if its content probes as audio within the limits; it is then stored as
``static/uploads/<32 hex>.<sniffed ext>`` with a sidecar JSON keeping the original name as
metadata only. Jobs refer to uploads by id, never by a client path or URL.
"""
from __future__ import annotations

import logging
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import numpy as np

from . import postprocess
from .fileio import atomic_write_json, read_json, temp_file
from .protocol import UPLOAD_ID
from .storage import UnsafeName, safe_child

log = logging.getLogger(__name__)

#: Longest accepted audio per purpose, in seconds.
MAX_SECONDS = {"melody": 300.0, "continuation": 600.0, "demucs": 1200.0}
MAX_CHANNELS = 8
RATE_RANGE = (8000, 192000)
EXTENSIONS = {"wav": "wav", "flac": "flac", "mp3": "mp3", "ogg": "ogg"}


class UploadError(ValueError):
    """An upload that is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


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
        """Store an uploaded file after probing it; nothing is left behind when it is refused."""
        if purpose not in MAX_SECONDS:
            raise UploadError(f"unknown upload purpose {purpose!r}")
        with temp_file(self.folder) as (handle, tmp_path):
            size = _copy(stream, handle)
        try:
            if size == 0:
                raise UploadError("the file is empty")
            info = self._check(tmp_path, purpose)
            upload_id = f"{uuid.uuid4().hex}.{EXTENSIONS[info.format]}"
            meta = UploadInfo(upload_id, _display(original_name), purpose, EXTENSIONS[info.format],
                              info.sample_rate, info.channels, round(info.duration, 3))
            os.replace(tmp_path, self.folder / upload_id)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        atomic_write_json(self.folder / f"{upload_id}.json", asdict(meta))
        return meta

    def _check(self, path: Path, purpose: str) -> postprocess.AudioInfo:
        """Probe the content and enforce the limits for its purpose."""
        try:
            info = postprocess.probe(path)
        except postprocess.AudioProbeError as exc:
            raise UploadError(f"unsupported or corrupt audio: {exc}") from None
        if info.format not in EXTENSIONS:
            raise UploadError(f"unsupported audio format {info.format}; use WAV, FLAC, MP3 or OGG")
        if not 1 <= info.channels <= MAX_CHANNELS:
            raise UploadError(f"the file has {info.channels} channels; at most {MAX_CHANNELS} are accepted")
        if not RATE_RANGE[0] <= info.sample_rate <= RATE_RANGE[1]:
            raise UploadError(f"sample rate {info.sample_rate} Hz is outside {RATE_RANGE[0]}–{RATE_RANGE[1]} Hz")
        limit = MAX_SECONDS[purpose]
        if not 0 < info.duration <= limit:
            raise UploadError(f"the audio lasts {info.duration:.1f} s; for {purpose} at most {limit:.0f} s")
        return info

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
        """Decode an upload to float32 ``[C, T]`` with non-finite samples zeroed."""
        try:
            path = self.path(upload_id)
        except UnsafeName:
            raise UploadError("the uploaded file is gone; upload it again") from None
        meta = self.info(upload_id)
        purpose = meta.purpose if meta else "demucs"
        return postprocess.read_audio(path, max_seconds=MAX_SECONDS[purpose])

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
