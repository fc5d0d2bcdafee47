"""Tracks on disk: naming, atomic (audio, JSON) commits, listing, delete, clear-all and crash recovery.

A track is ``static/audio/<base>.<ext>`` plus ``static/audio/<base>.json``; the JSON is written
last and is the commit marker, so a track without its JSON never appears. Stems of a track live in
``static/stems/<base>/``. Every name that arrives from a client goes through :func:`safe_child`,
which resolves it strictly inside its folder and refuses links.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from .fileio import TMP_PREFIX, atomic_write_json, fsync_dir, json_bytes, read_json, write_temp
from .testhooks import pause_point

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3")
TRASH_PREFIX = ".trash-"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: Names Windows maps to devices whatever the extension (``CON``, ``CON.txt``): opening one can hang.
WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                             *(f"{port}{n}" for port in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³"))})
#: The list of a delete or clear-all in progress (in the settings folder); the startup sweep finishes it.
REMOVAL_JOURNAL = "pending_removal.json"
MAX_ARTIST_IN_NAME = 40


class UnsafeName(ValueError):
    """A client-supplied name that does not resolve to a plain file or folder inside its root."""


def safe_child(root: Path, name: object, *, must_exist: bool = True) -> Path:
    """Resolve ``name`` as a direct child of ``root``; refuse traversal, separators, links and odd names.

    Raises:
        UnsafeName: for anything but a plain name of an existing (when ``must_exist``) non-link entry.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name or name.endswith(".") \
            or name.split(".")[0].upper() in WINDOWS_DEVICES:
        raise UnsafeName("invalid name")
    candidate = root / name
    try:
        info = candidate.lstat()
    except OSError:
        if must_exist:
            raise UnsafeName("no such file") from None
        return candidate
    if stat.S_ISLNK(info.st_mode) or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise UnsafeName("not a plain file or folder")
    resolved, base = candidate.resolve(), root.resolve()
    if resolved.parent != base:
        raise UnsafeName("outside its folder")
    return resolved


def safe_descendant(root: Path, relative: str) -> Path:
    """Resolve a ``/``-separated path below ``root`` one :func:`safe_child` step at a time (no links anywhere).

    Raises:
        UnsafeName: when any segment is not a plain, existing, non-link name.
    """
    path = root
    for part in relative.split("/"):
        path = safe_child(path, part)
    return path


_CYRILLIC = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u", "f",
     "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"]))


def _transliterate(text: str) -> str:
    """Spell Cyrillic in Latin letters so Russian artist names survive in file names."""
    return "".join(_CYRILLIC.get(ch.lower(), ch).capitalize() if ch.isupper() and ch.lower() in _CYRILLIC
                   else _CYRILLIC.get(ch, ch) for ch in text)


def sanitize_artist(artist: str) -> str:
    """Turn an artist name into an ASCII file-name prefix (empty when nothing usable is left)."""
    ascii_text = unicodedata.normalize("NFKD", _transliterate(artist)).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9-]+", "-", ascii_text).strip("-")
    return cleaned[:MAX_ARTIST_IN_NAME].strip("-")


def base_name(model_key: str, seed: int | None, artist: str, when: datetime) -> str:
    """Build ``[Artist_]Model_[Seed_]DDMMYYYY_HH_MM`` (seed left out in auto mode)."""
    parts = [sanitize_artist(artist), model_key, "" if seed is None else str(seed), when.strftime("%d%m%Y_%H_%M")]
    return "_".join(part for part in parts if part)


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

    def public(self) -> dict:
        """Describe the track for the browser."""
        return {"name": self.base, "audio": self.pair()[0], "json": self.pair()[1], "meta": self.meta,
                "mtime": self.mtime}


@dataclass
class RecoveryReport:
    """What the startup sweep found and did; shown to the user, never silently dropped."""

    removed_temp: list[str] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)
    finished_trash: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        """The report for the log and the browser."""
        return {"removed_temp": self.removed_temp, "quarantined": self.quarantined,
                "finished_trash": self.finished_trash}


class TrackStore:
    """Files are the database: the audio folder, the stems folder, settings and quarantine."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.audio_dir = root / "static" / "audio"
        self.stems_dir = root / "static" / "stems"
        self.settings_dir = root / "settings"
        self.quarantine_dir = root / "quarantine"
        for folder in (self.audio_dir, self.stems_dir, self.settings_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # Commits, JSON updates and removals exclude each other, so a delete or clear-all while the worker
        # writes a track removes all of it or none of it.
        self._lock = threading.RLock()

    # ---- writing -------------------------------------------------------------------------------

    def commit(self, base: str, ext: str, write_audio: Callable[[IO[bytes]], None], meta: dict) -> Track:
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
                pause_point("commit_json")
                os.replace(json_tmp, self.audio_dir / f"{final_base}.json")
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
            if (self.audio_dir / f"{candidate}.json").exists() or self._audio_of(candidate):
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

    def _audio_of(self, base: str) -> Path | None:
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
            if not isinstance(meta, dict) or self._audio_of(base) is None:
                return None
            change(meta)
            atomic_write_json(path, meta)
        return meta

    # ---- reading -------------------------------------------------------------------------------

    def list_tracks(self) -> list[Track]:
        """Committed tracks (valid JSON with its audio present), newest first."""
        tracks = []
        for json_path in self.audio_dir.glob("*.json"):
            track = self._load(json_path.stem)
            if track is not None:
                tracks.append(track)
        return sorted(tracks, key=lambda track: track.mtime, reverse=True)

    def get(self, name: object) -> Track | None:
        """Look up one committed track by a client-supplied base name (safe against traversal)."""
        try:
            safe_child(self.audio_dir, f"{name}.json")
        except UnsafeName:
            return None
        return self._load(str(name))

    def _load(self, base: str) -> Track | None:
        """Load a track if it is complete."""
        if base.startswith(".") or (self.audio_dir / f"{base}.json").is_symlink():
            return None
        meta = read_json(self.audio_dir / f"{base}.json")
        if not isinstance(meta, dict):
            return None
        audio = self._audio_of(base)
        if audio is None:
            return None
        return Track(base, audio.name, meta, audio.stat().st_mtime)

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
        """
        with self._lock:
            track = self.get(name)
            if track is None:
                raise UnsafeName("no such track")
            # The JSON (the commit marker) goes first: from then on the track is no longer listed.
            victims = [self.audio_dir / f"{track.base}.json", self.audio_dir / track.audio_file]
            stems = self.stems_dir / track.base
            if stems.is_dir() or stems.is_symlink():
                victims.append(stems)
            return self._trash(victims)

    def clear_all(self, extra_folders: tuple[Path, ...] = ()) -> list[str]:
        """Remove every track, stems folder and the entries of ``extra_folders`` (uploads, stems_any)."""
        with self._lock:
            victims: list[Path] = []
            for folder in (self.audio_dir, self.stems_dir, *extra_folders):
                if folder.is_dir():
                    victims.extend(p for p in folder.iterdir() if not p.name.startswith((TRASH_PREFIX, TMP_PREFIX)))
            return self._trash(victims)

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
            trashes = _move_to_trash(victims, stamp)
            journal.unlink()
        for trash in trashes:
            remove_tree(trash)
        return removed

    def _finish_removal(self, folders: tuple[Path, ...]) -> None:
        """Finish a delete or clear-all that a crash interrupted: move the rest of its journaled victims."""
        journal = self.settings_dir / REMOVAL_JOURNAL
        data = read_json(journal)
        if isinstance(data, dict) and isinstance(data.get("stamp"), str) and data["stamp"].startswith(TRASH_PREFIX) \
                and NAME_PATTERN.match(data["stamp"][1:]) and isinstance(data.get("victims"), list):
            managed = {folder.resolve() for folder in folders}
            victims = [self.root / item for item in data["victims"] if isinstance(item, str)]
            _move_to_trash([path for path in victims if path.parent.resolve() in managed
                            and path.name not in ("", ".", "..")], data["stamp"])
            log.warning("finished a removal interrupted by a crash (%d entries)", len(victims))
        journal.unlink(missing_ok=True)

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
        """Startup sweep: drop temp files and trash, quarantine corrupt JSON and orphans, never delete audio."""
        report = RecoveryReport()
        self._finish_removal((self.audio_dir, self.stems_dir, *extra_folders))
        for folder in (self.audio_dir, self.stems_dir, self.settings_dir, *extra_folders):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name.startswith(TMP_PREFIX):
                    remove_tree(path)
                    report.removed_temp.append(path.relative_to(self.root).as_posix())
                elif path.name.startswith(TRASH_PREFIX):
                    remove_tree(path)
                    report.finished_trash.append(path.relative_to(self.root).as_posix())
        self._quarantine_broken(report)
        if report.removed_temp or report.quarantined or report.finished_trash:
            log.warning("recovery sweep: %s", report.as_json())
        return report

    def _quarantine_broken(self, report: RecoveryReport) -> None:
        """Move corrupt JSON, audio without JSON and JSON without audio out of the history."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for path in sorted(self.audio_dir.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix == ".json":
                meta = read_json(path)
                if not isinstance(meta, dict):
                    reason, target = "corrupt_json", f"{path.name}.corrupt-{stamp}"
                elif self._audio_of(path.stem) is None:
                    reason, target = "json_without_audio", path.name
                else:
                    continue
            elif path.suffix in AUDIO_EXTENSIONS and not (self.audio_dir / f"{path.stem}.json").exists():
                reason, target = "audio_without_json", path.name
            else:
                continue
            self.quarantine_dir.mkdir(parents=True, exist_ok=True)
            os.replace(path, self.quarantine_dir / target)
            report.quarantined.append({"file": path.name, "reason": reason,
                                       "moved_to": f"quarantine/{target}"})
        for path in self.settings_dir.glob("*.json"):
            if read_json(path) is None:
                target = f"{path.name}.corrupt-{stamp}"
                os.replace(path, self.settings_dir / target)
                report.quarantined.append({"file": path.name, "reason": "corrupt_json",
                                           "moved_to": f"settings/{target}"})


def _move_to_trash(victims: list[Path], stamp: str) -> set[Path]:
    """Rename each victim still there (a link itself, never its target) into ``<its folder>/<stamp>/``."""
    trashes = set()
    for path in victims:
        if not (path.is_symlink() or path.exists()):
            continue
        trash = path.parent / stamp
        trash.mkdir(exist_ok=True)
        trashes.add(trash)
        os.replace(path, trash / path.name)
        pause_point("trash")
    return trashes


def remove_tree(path: Path) -> None:
    """Remove a file, a link (never its target) or a folder tree."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
