"""Atomic file writes: files are the database, so every write is temp file + fsync + rename.

A reader (or a restart after a crash) sees either the old file or the new one, never half of one.
Temporary files start with ``.tmp-`` in the destination folder, so the startup sweep can find them.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

TMP_PREFIX = ".tmp-"


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (a no-op where directories cannot be opened, e.g. Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def temp_file(folder: Path, suffix: str = "") -> Iterator[tuple[IO[bytes], Path]]:
    """Open a new ``.tmp-*`` file in ``folder``; it is removed if the block raises."""
    fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=folder)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, path
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_temp(folder: Path, writer: Callable[[IO[bytes]], object], suffix: str = "") -> Path:
    """Write a complete temp file with ``writer`` and return its path (not yet renamed)."""
    with temp_file(folder, suffix) as (handle, path):
        writer(handle)
    return path


def atomic_write_bytes(path: Path, writer: Callable[[IO[bytes]], object]) -> None:
    """Replace ``path`` atomically with what ``writer`` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = write_temp(path.parent, writer, path.suffix)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def json_bytes(data: object, *, compact: bool = False) -> bytes:
    """Encode JSON the way every file of the app is written (UTF-8, readable Cyrillic).

    Files people read are indented; ``compact`` ones (the queue file, rewritten three times per
    job) are written on one line by the C encoder, about four times faster.
    """
    if compact:
        return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def atomic_write_json(path: Path, data: object, *, compact: bool = False) -> None:
    """Replace a JSON file atomically."""
    payload = json_bytes(data, compact=compact)
    atomic_write_bytes(path, lambda handle: handle.write(payload))


def read_json(path: Path) -> object | None:
    """Read a JSON file; None when it is missing or not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


#: Write errors the user can fix, by errno, with the error type clients receive.
DISK_ERRORS = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EROFS: "read_only",
               errno.EACCES: "permission", errno.EPERM: "permission"}
_DISK_ADVICE = {"disk_full": "free some disk space", "read_only": "check that the data folder is not read-only",
                "permission": "check that the data folder is writable by the user running the server"}
#: An absolute path (POSIX or Windows) inside a message: a client never sees the server's folders.
_ABSOLUTE_PATH = re.compile(r"""(?:(?<=^)|(?<=[\s'"(=]))(?:[A-Za-z]:\\|/)[^\s'"]*?([^/\\\s'"]+)(?=[\s'",;:)]|$)""")


def disk_error(exc: BaseException) -> dict | None:
    """``{type, message}`` for a disk or permission error (no path in it), or None for anything else."""
    if not isinstance(exc, OSError) or exc.errno not in DISK_ERRORS:
        return None
    kind = DISK_ERRORS[exc.errno]
    return {"type": kind, "message": f"Could not write to the data folder: {exc.strerror}. Please "
                                     f"{_DISK_ADVICE[kind]}; earlier tracks are intact."}


def scrub_paths(message: str) -> str:
    """Replace every absolute path in a message with its last component."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), message)
