"""HTTP routes for stems: the Demucs upload, stem lists, stem files, ZIP download and server-side mixdown.

Every route exists twice, for the stems of a track (``static/stems/<name>/``) and for the stems of an
uploaded file (``static/stems_any/<id>/``). Names from the URL resolve only through
:class:`~.stems.StemFolders` (one plain name, no traversal, no links); anything else is a 404.
"""
from __future__ import annotations

import io
import math
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file

from ..audio import codecs
from ..services import EXTENSION_KEY, Services
from ..stems.folders import StemFolders
from ..stems.mixing import mix_files
from ..storage import UnsafeName
from .views import accept_upload

bp = Blueprint("stems", __name__)

#: Largest gain the mixdown accepts (the mixer's sliders go to 2).
MAX_GAIN = 4.0
#: Bytes read from a stem file at a time while zipping.
ZIP_CHUNK = 1 << 20


def services() -> Services:
    """The current app's services."""
    return current_app.extensions[EXTENSION_KEY]


def track_folders() -> StemFolders:
    """Stem sets of tracks (``static/stems``)."""
    return services().stems.tracks


def any_folders() -> StemFolders:
    """Stem sets of uploaded files (``static/stems_any``)."""
    return services().stems.any


class MixError(ValueError):
    """A mixdown request that cannot be served; answered with 400 and the message."""


# ---- upload and listing --------------------------------------------------------------------------------


@bp.post("/upload_demucs_any")
def upload_demucs_any() -> tuple[Response, int]:
    """Upload any audio file (field ``file``: WAV, FLAC, MP3 or OGG) to split with ``demucs_any``."""
    return accept_upload("file", "demucs")


@bp.get("/api/stems/<name>")
def track_stems(name: str) -> tuple[Response, int]:
    """List a track's stems and the state of its stem split."""
    svc = services()
    if svc.store.get(name) is None:
        return jsonify({"ok": False, "error": "no such track"}), 404
    return jsonify({"ok": True, "name": name, "stems": svc.stems.tracks.public(name),
                    "task": svc.stems.track_status(name)}), 200


@bp.get("/api/stems_any/<key>")
def any_stems(key: str) -> tuple[Response, int]:
    """List the stems of an uploaded file."""
    stems = any_folders().public(key)
    if not stems:
        return jsonify({"ok": False, "error": "no stems for this id"}), 404
    return jsonify({"ok": True, "id": key, "stems": stems}), 200


# ---- stem files ----------------------------------------------------------------------------------------


def stem_file_name(key: str, stem: str) -> str:
    """What a stem is called once it leaves the server (a download or a ZIP entry): ``<track>_<stem>.wav``."""
    return f"{key}_{stem}.wav"


def _serve(folders: StemFolders, key: str, filename: str) -> Response:
    """Send one stem WAV (never a link, never outside its folder), named ``<track>_<stem>.wav`` for saving."""
    if not filename.endswith(".wav"):
        abort(404)
    stem = filename.removesuffix(".wav")
    try:
        path = folders.file(key, stem)
    except UnsafeName:
        abort(404)
    return send_file(path, mimetype="audio/wav", max_age=0, conditional=True,
                     download_name=stem_file_name(key, stem))


@bp.get("/static/stems/<name>/<filename>")
def track_stem_file(name: str, filename: str) -> Response:
    """Serve ``static/stems/<name>/<stem>.wav``."""
    return _serve(track_folders(), name, filename)


@bp.get("/static/stems_any/<key>/<filename>")
def any_stem_file(key: str, filename: str) -> Response:
    """Serve ``static/stems_any/<id>/<stem>.wav``."""
    return _serve(any_folders(), key, filename)


# ---- ZIP -----------------------------------------------------------------------------------------------


def _selected(folders: StemFolders, key: str, wanted: str | None) -> list[str]:
    """The stems named in ``?stems=a,b`` (all when absent), each checked to exist."""
    available = folders.names(key)
    if not available:
        abort(404)
    if not wanted:
        return available
    names = [name for name in dict.fromkeys(part.strip() for part in wanted.split(",")) if name]
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        abort(400, description=f"no such stem: {', '.join(unknown) or '(none)'}; "
                               f"available: {', '.join(available)}")
    return names


def zip_stream(files: list[tuple[str, Path]]) -> Iterator[bytes]:
    """Yield a stored (uncompressed) ZIP of ``(entry name, path)`` pairs piece by piece, with no temp file.

    Every file is opened before the first byte is produced, so a file removed meanwhile is still sent
    whole (POSIX) and a missing one fails before the response starts.
    """
    handles = [(name, open(path, "rb")) for name, path in files]  # noqa: SIM115 - the generator closes them

    def generate() -> Iterator[bytes]:
        sink = _Sink()
        try:
            with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
                for name, handle in handles:
                    entry = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
                    with archive.open(entry, "w") as target:
                        while chunk := handle.read(ZIP_CHUNK):
                            target.write(chunk)
                            yield sink.take()
                    yield sink.take()
            yield sink.take()
        finally:
            for _, handle in handles:
                handle.close()

    return generate()


class _Sink:
    """A write-only, unseekable buffer that ZipFile writes into and the generator drains.

    ZipFile needs only ``write``, ``flush`` and ``close`` of it: without ``tell`` it writes a streamable archive.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def flush(self) -> None:
        """Nothing is buffered beyond the chunks."""

    def close(self) -> None:
        """Nothing to release: the generator drains what is left."""

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Keep a copy of the bytes until the next :meth:`take`."""
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        """Hand over what was written since the last call."""
        data, self._chunks = b"".join(self._chunks), []
        return data


def _zip(folders: StemFolders, key: str, download: str) -> Response:
    """Stream the chosen stems of a set as ``<download>.zip``, entries named ``<track>_<stem>.wav`` (no folders)."""
    try:
        names = _selected(folders, key, request.args.get("stems"))
        files = [(stem_file_name(key, name), folders.file(key, name)) for name in names]
        body = zip_stream(files)
    except (UnsafeName, OSError):
        abort(404)
    return Response(body, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{download}.zip"'})


@bp.get("/stems_zip/<name>")
def track_stems_zip(name: str) -> Response:
    """Download a track's stems as a ZIP (``?stems=vocals,drums``; all when absent)."""
    return _zip(track_folders(), name, f"{name}_stems")


@bp.get("/stems_any_zip/<key>")
def any_stems_zip(key: str) -> Response:
    """Download an uploaded file's stems as a ZIP (``?stems=...``; all when absent)."""
    return _zip(any_folders(), key, f"stems_{key}")


# ---- mixdown -------------------------------------------------------------------------------------------


def parse_mix(body: object, available: list[str]) -> list[tuple[str, float]]:
    """Read ``{stems: {name: {gain, mute}}}`` into ``(stem, gain)`` pairs to sum; no ``stems`` = all at 1.0.

    Only the stems named are mixed; muted ones and gain 0 are left out.

    Raises:
        MixError: not an object, an unknown stem, a gain not a finite number in [0, 4], nothing left.
    """
    if body is None or (isinstance(body, dict) and body.get("stems") is None):
        return [(name, 1.0) for name in available]
    stems = body.get("stems") if isinstance(body, dict) else None
    if not isinstance(stems, dict):
        raise MixError("send {\"stems\": {\"<stem>\": {\"gain\": 1.0, \"mute\": false}, ...}}")
    chosen = []
    for name, settings in stems.items():
        if name not in available:
            raise MixError(f"no such stem: {name!r}; available: {', '.join(available)}")
        settings = settings if isinstance(settings, dict) else {}
        gain, mute = settings.get("gain", 1.0), settings.get("mute", False)
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain) \
                or not 0.0 <= gain <= MAX_GAIN:
            raise MixError(f"the gain of {name} must be a number from 0 to {MAX_GAIN:g}")
        if not isinstance(mute, bool):
            raise MixError(f"mute of {name} must be true or false")
        if not mute and gain > 0:
            chosen.append((name, float(gain)))
    if not chosen:
        raise MixError("nothing to mix: every stem is muted or silent")
    return chosen


def _mix(folders: StemFolders, key: str) -> Response:
    """Mix the chosen stems of a set into one 16-bit WAV (peak-normalised only if it would clip)."""
    available = folders.names(key)
    if not available:
        abort(404)
    try:
        chosen = parse_mix(request.get_json(silent=True), available)
        mix, rate = mix_files([(folders.file(key, name), gain) for name, gain in chosen])
    except ValueError as exc:  # MixError, or stems that cannot be summed (different rates)
        abort(400, description=str(exc))
    except (UnsafeName, OSError):
        abort(404)
    buffer = io.BytesIO()
    codecs.encode(mix, rate, "wav", buffer)
    buffer.seek(0)
    label = "+".join(name for name, _ in chosen)
    return send_file(buffer, mimetype="audio/wav", as_attachment=True, download_name=f"{key}_mix_{label}.wav")


@bp.post("/stems_mix/<name>")
def track_stems_mix(name: str) -> Response:
    """Mix a track's stems with per-stem gain and mute into one WAV."""
    return _mix(track_folders(), name)


@bp.post("/stems_any_mix/<key>")
def any_stems_mix(key: str) -> Response:
    """Mix an uploaded file's stems with per-stem gain and mute into one WAV."""
    return _mix(any_folders(), key)
