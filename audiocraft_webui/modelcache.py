"""Which models are on this machine already, how large a download is, and fetching a model with byte progress.

The catalogue's models are audiocraft checkpoints: a hub repo (or a local folder) holding ``state_dict.bin``
(the language model) and ``compression_state_dict.bin`` (EnCodec), plus the ``t5-base`` text encoder every
MusicGen loads. The Hugging Face cache is read with ``try_to_load_from_cache`` and never over the network;
huggingface_hub is imported on first use, so the server still starts at once.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .models import ModelInfo

CHECKPOINT_FILES = ("state_dict.bin", "compression_state_dict.bin")
#: The text encoder every MusicGen conditions on (audiocraft's T5Conditioner loads it through transformers).
TEXT_ENCODER = ("t5-base", "config.json")
#: Parameters of the official checkpoints by size (the model cards: 300M, 1.5B, 3.3B; melody models are medium
#: or large). The download estimate is these at 4 bytes (fp32) plus the 32 kHz EnCodec file (236 MB); the
#: exact size is read from the cache once a model is there.
PARAMETERS = {"small": 300_000_000, "medium": 1_500_000_000, "large": 3_300_000_000}
CODEC_BYTES = 236_000_000

class DownloadError(RuntimeError):
    """A model's checkpoint could not be downloaded; the message names the model."""


#: Called while a model downloads with ``(downloaded_bytes, total_bytes)`` over all its missing files.
ByteProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Availability:
    """Whether a model loads without a download, and how large it is (``cache``, ``local`` or ``estimate``)."""

    cached: bool
    size_bytes: int | None
    size_source: str

    def public(self) -> dict:
        """The fields the model list and the page's boot config add to each model."""
        return {"cached": self.cached, "size_bytes": self.size_bytes, "size_source": self.size_source}


def hub_cache() -> str | None:
    """The cache folder audiocraft downloads into (``AUDIOCRAFT_CACHE_DIR``, else the Hugging Face default)."""
    return os.environ.get("AUDIOCRAFT_CACHE_DIR") or None


def cached_file(repo_id: str, filename: str) -> Path | None:
    """A file of a hub repo in the local cache, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache())
    return Path(found) if isinstance(found, str) else None


def is_local(model: ModelInfo) -> bool:
    """Whether a (custom) model is a folder on this machine rather than a hub id."""
    return model.custom and Path(model.source).is_dir()


def missing_files(model: ModelInfo) -> list[str]:
    """The checkpoint files of a hub model that are not in the cache yet (none for a local folder)."""
    if is_local(model):
        return []
    return [name for name in CHECKPOINT_FILES if cached_file(model.source, name) is None]


def availability(model: ModelInfo) -> Availability:
    """Whether ``model`` loads offline (its checkpoint and the text encoder are here) and its size."""
    encoder = cached_file(*TEXT_ENCODER) is not None
    if is_local(model):
        files = [Path(model.source) / name for name in CHECKPOINT_FILES]
        present = all(path.is_file() for path in files)
        return Availability(present and encoder, sum(path.stat().st_size for path in files) if present else None,
                            "local")
    paths = [cached_file(model.source, name) for name in CHECKPOINT_FILES]
    if all(path is not None for path in paths):
        return Availability(encoder, sum(path.stat().st_size for path in paths if path is not None), "cache")
    estimate = None if model.custom else PARAMETERS[model.size] * 4 + CODEC_BYTES
    return Availability(False, estimate, "estimate" if estimate else "unknown")


def offline() -> bool:
    """Whether the hub may not be reached (``HF_HUB_OFFLINE``), so a model that is not cached cannot load."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def unavailable_reason(model: ModelInfo) -> str | None:
    """Why ``model`` cannot load now (not on this machine and the hub is off limits), or None when it can."""
    if availability(model).cached or not offline():
        return None
    return (f"model {model.key!r} is not on this machine and the Hugging Face hub cannot be reached "
            f"(offline mode); choose a model you have, or connect once so it can download")


class _ByteBar:
    """A stand-in for tqdm that huggingface_hub's ``tqdm_class`` drives: it counts bytes and reports them."""

    def __init__(self, **kwargs: object) -> None:
        initial = kwargs.get("initial")
        self.n = initial if isinstance(initial, int) else 0
        self._report(self.n)

    def _report(self, n: int) -> None:
        """Tell the job how many bytes of this file are in (set per file by :func:`_bars`)."""

    def __enter__(self) -> _ByteBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int | float | None = 1) -> None:
        """Count ``n`` more bytes."""
        self.n += int(n or 0)
        self._report(self.n)

    def close(self) -> None:
        """Nothing to release."""

    def set_postfix_str(self, *args: object, **kwargs: object) -> None:
        """The rate text tqdm would show: not needed."""

    def set_description(self, *args: object, **kwargs: object) -> None:
        """The description tqdm would show: not needed."""


def fetch(model: ModelInfo, on_bytes: ByteProgress) -> None:
    """Download the checkpoint files a hub model lacks, reporting the bytes over all of them.

    The sizes come first (``dry_run``), so the total is known from the first report; then each file goes through
    ``hf_hub_download`` with a ``tqdm_class`` that counts its bytes. Files already cached are not touched, and a
    local folder needs nothing. The text encoder is left to the loader (its files are transformers' choice).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    missing = missing_files(model)
    if not missing:
        return
    try:
        plans = [hf_hub_download(model.source, name, cache_dir=hub_cache(), dry_run=True) for name in missing]
        total = sum(plan.file_size or 0 for plan in plans if plan.will_download)
        done = 0
        for name, plan in zip(missing, plans, strict=True):
            if not plan.will_download:
                continue
            hf_hub_download(model.source, name, cache_dir=hub_cache(), tqdm_class=_bars(done, total, on_bytes))
            done += plan.file_size or 0
            on_bytes(done, total)
    except (OSError, ValueError, EntryNotFoundError) as exc:  # offline, not found, HTTP (a cancel passes through)
        raise DownloadError(f"Could not download model '{model.source}': {type(exc).__name__}: {exc}"[:500]) \
            from exc


def _bars(offset: int, total: int, on_bytes: ByteProgress) -> type[_ByteBar]:
    """The ``tqdm_class`` of one file: its bytes counted after the ``offset`` bytes of the files before it."""

    class FileBar(_ByteBar):
        def _report(self, n: int) -> None:
            on_bytes(min(offset + n, total), total)

    return FileBar
