"""Stem sets on disk: one folder per set (``static/stems/<track>/`` or ``static/stems_any/<id>/``), written
into a ``.tmp-`` folder and renamed into place only when every stem is complete, so a crash or a failure
never leaves a partial set.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..audio import codecs
from ..engines.stemsplit import stem_sort_key
from ..fileio import TMP_PREFIX, fsync_dir
from ..storage import TRASH_PREFIX, UnsafeName, remove_tree, safe_child


class StemFolders:
    """A folder of stem sets addressed by key (a track's base name, or an upload id without extension).

    Keys and stem names from clients resolve only through :func:`~.storage.safe_child`: one plain name,
    no traversal, no links, never outside ``root``.
    """

    def __init__(self, root: Path, url_prefix: str) -> None:
        self.root = root
        self.url_prefix = url_prefix
        root.mkdir(parents=True, exist_ok=True)

    def folder(self, key: object) -> Path:
        """The existing stem folder of ``key``. Raises UnsafeName for anything else."""
        path = safe_child(self.root, key)
        if not path.is_dir():
            raise UnsafeName("not a stem folder")
        return path

    def names(self, key: object) -> list[str]:
        """Stem names of a set (``vocals``, ``no_vocals`` ...), empty when there is no such set."""
        try:
            folder = self.folder(key)
        except UnsafeName:
            return []
        found = [path.stem for path in folder.iterdir()
                 if path.suffix == ".wav" and not path.is_symlink() and path.is_file()]
        return sorted(found, key=stem_sort_key)

    def file(self, key: object, stem: object) -> Path:
        """One stem file of a set, by stem name (without ``.wav``). Raises UnsafeName."""
        if not isinstance(stem, str):
            raise UnsafeName("invalid stem name")
        path = safe_child(self.folder(key), f"{stem}.wav")
        if not path.is_file():
            raise UnsafeName("not a stem file")
        return path

    def public(self, key: str) -> list[dict]:
        """``[{name, url}]`` of a set, in stem order, for events and the API."""
        return [{"name": name, "url": f"{self.url_prefix}/{key}/{name}.wav"} for name in self.names(key)]

    def commit(self, key: str, stems: dict[str, np.ndarray], sample_rate: int) -> list[str]:
        """Write a whole stem set atomically: into a ``.tmp-`` folder, then renamed to ``root/key``.

        A folder already at ``root/key`` (an orphan, or the set being replaced) goes to the trash first.

        Args:
            key: the set's key (validated as a plain name).
            stems: name -> float32 ``[C, T]`` in [-1, 1].
            sample_rate: Hz, for every stem.
        Returns:
            The stem names written.
        """
        with self.staging(key) as tmp:
            for name, audio in stems.items():
                with open(tmp / f"{name}.wav", "wb") as handle:
                    codecs.encode(audio, sample_rate, "wav", handle)
            self.publish(key, tmp)
        return list(stems)

    @contextlib.contextmanager
    def staging(self, key: str) -> Iterator[Path]:
        """A new ``.tmp-<key>-*`` folder to write a set into; removed unless :meth:`publish` moved it."""
        safe_child(self.root, key, must_exist=False)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{key}-", dir=self.root))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def publish(self, key: str, staged: Path) -> None:
        """Make a complete staged set the set of ``key``: files synced, then one rename (a replaced set is trashed)."""
        final = safe_child(self.root, key, must_exist=False)
        for path in staged.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(staged)
        self.discard(key)
        os.replace(staged, final)
        fsync_dir(self.root)

    def discard(self, key: str) -> None:
        """Remove a set (a link is removed, never followed): renamed into the trash first, then deleted."""
        path = self.root / key
        if not (path.is_symlink() or path.exists()):
            return
        trash = self.root / f"{TRASH_PREFIX}{time.time_ns()}-{key}"
        os.replace(path, trash)
        remove_tree(trash)
