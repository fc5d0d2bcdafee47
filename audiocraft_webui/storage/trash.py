"""Removal that is all or nothing even across a crash: victims are renamed into a trash folder, then deleted.

The list of victims is journaled in the settings folder before the first rename; the startup sweep
(:mod:`.recovery`) finishes a removal a crash interrupted.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..hooks import Pause, no_pause

TRASH_PREFIX = ".trash-"
#: The list of a delete or clear-all in progress (in the settings folder); the startup sweep finishes it.
REMOVAL_JOURNAL = "pending_removal.json"


def move_to_trash(victims: list[Path], stamp: str, pause: Pause = no_pause) -> set[Path]:
    """Rename each victim still there (a link itself, never its target) into ``<its folder>/<stamp>/``.

    ``pause`` is called after each rename (the crash tests stop the server there).
    """
    trashes = set()
    for path in victims:
        if not (path.is_symlink() or path.exists()):
            continue
        trash = path.parent / stamp
        trash.mkdir(exist_ok=True)
        trashes.add(trash)
        os.replace(path, trash / path.name)
        pause("trash")
    return trashes
