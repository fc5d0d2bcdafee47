"""Tracks on disk: atomic (audio, JSON) commits, listing, JSON updates, delete, clear-all and settings.

A track is ``static/audio/<base>.<ext>`` plus ``static/audio/<base>.json``; the JSON is written
last and is the commit marker, so a track without its JSON never appears. Stems of a track live in
``static/stems/<base>/``. Client names go through :func:`~.paths.safe_child`. Parsed records are
cached by the JSON file's identity (inode, mtime, size), so listing a large library parses only the
files that changed; the store's own writes and removals drop their entries at once.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..fileio import TMP_PREFIX, atomic_write_json, fsync_dir, json_bytes, read_json, write_temp
from ..hooks import Pause, no_pause
from .paths import UnsafeName, remove_tree, safe_child
from .records import record_problem
from .recovery import RecoveryReport, RecoverySweep
from .trash import REMOVAL_JOURNAL, TRASH_PREFIX, move_to_trash

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3")
#: What identifies one version of a JSON file: every write is a rename, so the inode changes too.
FileKey = tuple[int, int, int]


@dataclass
class _Record:
    """A parsed track JSON as cached by the store, with its compact encoding once a list has needed it."""

    key: FileKey
    meta: dict
    encoded: bytes | None = None


class TrackLocked(RuntimeError):
    """A locked track cannot be deleted; the user unlocks it first."""


@dataclass(frozen=True)
class Cleared:
    """What a clear-all removed (paths relative to the data folder) and the locked tracks it kept (base names)."""

    removed: list[str]
    kept: list[str]


@dataclass
class Track:
    """A committed track: its base name, audio file name and metadata."""

    base: str
    audio_file: str
    meta: dict = field(default_factory=dict)
    mtime: float = 0.0

    def pair(self) -> list[str]:
        """The ``[audio_path, json_path]`` pair of the original ``audio_json_pairs`` event."""
        return [f"static/audio/{self.audio_file}", f"static/audio/{self.base}.json"]

    @property
    def locked(self) -> bool:
        """Whether the user locked the track against delete and clear-all."""
        return self.meta.get("locked") is True

    def public(self) -> dict:
        """Describe the track for the browser."""
        return {"name": self.base, "audio": self.pair()[0], "json": self.pair()[1], "meta": self.meta,
                "mtime": self.mtime}



def _compact(data: object) -> bytes:
    """Compact UTF-8 JSON for the wire."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class TrackStore:
    """Files are the database: the audio folder, the stems folder, settings and quarantine."""

    audio_extensions = AUDIO_EXTENSIONS

    def __init__(self, root: Path, pause: Pause = no_pause) -> None:
        """``pause`` is called at the points the crash tests stop a server at (``commit_json``, ``trash``)."""
        self.root = root
        self.pause = pause
        self.audio_dir = root / "static" / "audio"
        self.stems_dir = root / "static" / "stems"
        self.settings_dir = root / "settings"
        self.quarantine_dir = root / "quarantine"
        for folder in (self.audio_dir, self.stems_dir, self.settings_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # Commits, JSON updates and removals exclude each other, so a delete or clear-all while the worker
        # writes a track removes all of it or none of it.
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}

    # ---- writing -------------------------------------------------------------------------------

    def commit(self, base: str, ext: str, write_audio: Callable[[IO[bytes]], object], meta: dict) -> Track:
        """Write audio then JSON atomically under a unique name derived from ``base``.

        The audio is encoded straight into a temp file in the audio folder (no intermediate file is
        ever left), renamed to a free name, then the JSON is renamed beside it as the commit marker.
        """
        audio_tmp = write_temp(self.audio_dir, write_audio, "." + ext)
        with self._lock:
            try:
                final_base = self._claim(base, ext, audio_tmp)
            except BaseException:
                audio_tmp.unlink(missing_ok=True)
                raise
            audio_file = f"{final_base}.{ext}"
            meta = {**meta, "audio_file": audio_file}
            payload = json_bytes(meta)
            json_tmp: Path | None = None
            try:
                json_tmp = write_temp(self.audio_dir, lambda handle: handle.write(payload), ".json")
                self.pause("commit_json")
                os.replace(json_tmp, self.audio_dir / f"{final_base}.json")
                self._records.pop(final_base, None)
            except BaseException:
                if json_tmp is not None:
                    json_tmp.unlink(missing_ok=True)
                (self.audio_dir / audio_file).unlink(missing_ok=True)
                raise
        fsync_dir(self.audio_dir)
        return Track(final_base, audio_file, meta, time.time())

    def _claim(self, base: str, ext: str, audio_tmp: Path) -> str:
        """Move the finished audio to the first free ``base``, ``base-2`` ... without overwriting anything.

        ``os.link`` fails if the target exists, which makes the claim atomic (no exists() race);
        file systems without hard links fall back to an exclusive create check.
        """
        for index in range(1, 1000):
            candidate = base if index == 1 else f"{base}-{index}"
            if (self.audio_dir / f"{candidate}.json").exists() or self.audio_of(candidate):
                continue
            target = self.audio_dir / f"{candidate}.{ext}"
            try:
                os.link(audio_tmp, target)
            except FileExistsError:
                continue
            except OSError:
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    continue
                os.replace(audio_tmp, target)
                return candidate
            audio_tmp.unlink()
            return candidate
        raise RuntimeError(f"no free file name for {base}")

    def audio_of(self, base: str) -> Path | None:
        """The audio file of a base name, if one exists."""
        for ext in AUDIO_EXTENSIONS:
            path = self.audio_dir / f"{base}{ext}"
            if path.is_file() and not path.is_symlink():
                return path
        return None

    def update_meta(self, base: str, change: Callable[[dict], None]) -> dict | None:
        """Apply ``change`` to a track's JSON and rewrite it atomically; None if the track is gone."""
        path = self.audio_dir / f"{base}.json"
        with self._lock:
            meta = read_json(path)
            if not isinstance(meta, dict) or self.audio_of(base) is None:
                return None
            change(meta)
            atomic_write_json(path, meta)
            self._records.pop(base, None)
        return meta

    # ---- reading -------------------------------------------------------------------------------

    def list_tracks(self) -> list[Track]:
        """Committed tracks (valid JSON with its audio present), newest first.

        One directory scan finds every JSON and its audio; only JSON files that changed since the last
        call are parsed again.
        """
        with os.scandir(self.audio_dir) as scan:
            entries = {entry.name: entry for entry in scan}
        tracks = []
        for name, entry in entries.items():
            if not name.endswith(".json") or name.startswith(".") or entry.is_symlink():
                continue
            base = name[:-len(".json")]
            audio = next((entries[base + ext] for ext in AUDIO_EXTENSIONS
                          if base + ext in entries and entries[base + ext].is_file(follow_symlinks=False)), None)
            meta = self._record(base, entry.stat(follow_symlinks=False)) if audio is not None else None
            if audio is not None and meta is not None:
                tracks.append(Track(base, audio.name, meta, audio.stat(follow_symlinks=False).st_mtime))
        return sorted(tracks, key=lambda track: track.mtime, reverse=True)

    def record(self, base: str) -> dict | None:
        """A track's parsed JSON through the cache (the startup sweep reads every record this way, so the first
        list after a start is already warm); None when it is missing or not a JSON object."""
        try:
            info = (self.audio_dir / f"{base}.json").stat()
        except OSError:
            return None
        return self._record(base, info)

    def _record(self, base: str, info: os.stat_result) -> dict | None:
        """The parsed JSON of a track, from the cache while the file is the one parsed before."""
        key = (info.st_ino, info.st_mtime_ns, info.st_size)
        cached = self._records.get(base)
        if cached is not None and cached.key == key:
            return cached.meta
        meta = read_json(self.audio_dir / f"{base}.json")
        if not isinstance(meta, dict) or record_problem(meta) is not None:
            self._records.pop(base, None)  # a record that appears broken later is ignored, never raised from
            return None
        self._records[base] = _Record(key, meta)
        return meta

    def public_json(self, tracks: list[Track]) -> bytes:
        """The JSON list of :meth:`Track.public` for ``tracks``, each record encoded once while it is unchanged.

        Encoding a thousand records with their waveforms is most of a large list's cost; a record read
        from the cache keeps its encoding until its file changes.
        """
        parts = []
        for track in tracks:
            record = self._records.get(track.base)
            if record is None or record.meta is not track.meta:
                encoded = _compact(track.meta)
            else:
                encoded = record.encoded = record.encoded or _compact(track.meta)
            head = _compact({"name": track.base, "audio": track.pair()[0], "json": track.pair()[1],
                             "mtime": track.mtime})
            parts.append(head[:-1] + b',"meta":' + encoded + b"}")
        return b"[" + b",".join(parts) + b"]"

    def get(self, name: object) -> Track | None:
        """Look up one committed track by a client-supplied base name (safe against traversal)."""
        try:
            safe_child(self.audio_dir, f"{name}.json")
        except UnsafeName:
            return None
        return self._load(str(name))

    def _load(self, base: str) -> Track | None:
        """Load a track if it is complete."""
        json_path = self.audio_dir / f"{base}.json"
        if base.startswith(".") or json_path.is_symlink():
            return None
        audio = self.audio_of(base)
        meta = self.record(base) if audio is not None else None
        if audio is None or meta is None:
            return None
        return Track(base, audio.name, meta, audio.stat().st_mtime)

    def set_flags(self, base: str, flags: dict[str, bool]) -> Track | None:
        """Set a track's ``favorite`` / ``locked`` flags in its JSON atomically; None if the track is gone."""
        with self._lock:
            if self.update_meta(base, lambda meta: meta.update(flags)) is None:
                return None
            return self._load(base)

    def stems_of(self, base: str) -> list[str]:
        """Stem file names of a track (empty when it has none)."""
        folder = self.stems_dir / base
        if folder.is_symlink() or not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.suffix == ".wav" and p.is_file() and not p.is_symlink())

    # ---- deleting ------------------------------------------------------------------------------

    def delete(self, name: object) -> list[str]:
        """Delete a track's audio, JSON and stems folder; returns the paths removed (relative to root).

        Raises:
            UnsafeName: when ``name`` is not a committed track's base name.
            TrackLocked: when the track is locked (nothing is removed).
        """
        with self._lock:
            track = self.get(name)
            if track is None:
                raise UnsafeName("no such track")
            if track.locked:
                raise TrackLocked(f"{track.base} is locked; unlock it before deleting it")
            # The JSON (the commit marker) goes first: from then on the track is no longer listed.
            victims = [self.audio_dir / f"{track.base}.json", self.audio_dir / track.audio_file]
            stems = self.stems_dir / track.base
            if stems.is_dir() or stems.is_symlink():
                victims.append(stems)
            return self._trash(victims)

    def clear_all(self, extra_folders: tuple[Path, ...] = ()) -> Cleared:
        """Remove every track that is not locked, its stems folder, and the entries of ``extra_folders``.

        A locked track keeps its audio, its JSON and its stems folder; everything else in the audio and
        stems folders goes (uploads and stems_any as given in ``extra_folders``).
        """
        with self._lock:
            locked = [track for track in self.list_tracks() if track.locked]
            # Names a locked track owns in the audio folder (JSON and audio) and in the stems folder (its set).
            keep = {name for track in locked for name in (f"{track.base}.json", track.audio_file, track.base)}
            victims: list[Path] = []
            for folder in (self.audio_dir, self.stems_dir, *extra_folders):
                if folder.is_dir():
                    victims.extend(p for p in folder.iterdir() if not p.name.startswith((TRASH_PREFIX, TMP_PREFIX))
                                   and not (folder in (self.audio_dir, self.stems_dir) and p.name in keep))
            return Cleared(self._trash(victims), sorted(track.base for track in locked))

    def _trash(self, victims: list[Path]) -> list[str]:
        """Rename victims into one trash folder per parent, then remove those: all or nothing, even on a crash.

        The list is journaled in the settings folder before the first rename and dropped after the last, so a
        crash half-way is finished by the startup sweep instead of leaving some of the victims visible.
        """
        stamp = f"{TRASH_PREFIX}{time.time_ns()}"
        removed = [path.relative_to(self.root).as_posix() for path in victims]
        journal = self.settings_dir / REMOVAL_JOURNAL
        with self._lock:
            atomic_write_json(journal, {"stamp": stamp, "victims": removed})
            trashes = move_to_trash(victims, stamp, self.pause)
            journal.unlink()
            for path in victims:
                if path.parent == self.audio_dir and path.suffix == ".json":
                    self._records.pop(path.stem, None)
        for trash in trashes:
            remove_tree(trash)
        return removed

    # ---- settings ------------------------------------------------------------------------------

    def save_last_run(self, data: dict) -> None:
        """Remember the last submitted request for the form pre-fill and the "restore" button."""
        atomic_write_json(self.settings_dir / "last_run.json", data)

    def load_last_run(self) -> dict | None:
        """The last submitted request, or None when missing or unreadable."""
        data = read_json(self.settings_dir / "last_run.json")
        return data if isinstance(data, dict) else None

    # ---- recovery ------------------------------------------------------------------------------

    def recover(self, extra_folders: tuple[Path, ...] = ()) -> RecoveryReport:
        """Run the startup sweep over this store and ``extra_folders`` (see :mod:`.recovery`)."""
        return RecoverySweep(self, extra_folders).run()
