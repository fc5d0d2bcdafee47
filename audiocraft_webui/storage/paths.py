"""Path safety: every name that arrives from a client resolves strictly inside its folder, never through a link."""
from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: Names Windows maps to devices whatever the extension (``CON``, ``CON.txt``): opening one can hang.
WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                             *(f"{port}{n}" for port in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³"))})
#: The list of a delete or clear-all in progress (in the settings folder); the startup sweep finishes it.


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



def remove_tree(path: Path) -> None:
    """Remove a file, a link (never its target) or a folder tree."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
