"""The memory of a long-running server: steady allocator thresholds while it works, pages back when it unloads.

The C-heap functions act on glibc only (Linux); elsewhere they do nothing. Measured on CPU with the tiny and
musicgen-small models: docs/PERFORMANCE.md, changes 2, 5 and 6.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import sys
from functools import cache

log = logging.getLogger(__name__)

#: ``mallopt`` parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap, not from a fresh ``mmap`` (glibc's own upper bound, 32 MB).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of a heap is kept up to this size instead of being returned at every ``free``.
TRIM_THRESHOLD = 128 * 1024 * 1024


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl)
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def tune_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds for the server process; True when they were set.

    By default glibc adapts them as blocks are freed, and the heap of a thread other than the main
    one (the worker's) is shrunk and grown again around every decoding step: the worker took up to
    40 % more page faults per generation than the same generation on a main thread, zero-filling
    the same pages again and again. Fixed thresholds keep those pages; :func:`trim_heap` still returns
    them when a model is unloaded.
    """
    libc = _glibc()
    if libc is None:
        return False
    done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                     TRIM_THRESHOLD))
    if not done:
        log.warning("could not set the allocator thresholds; generation may be a little slower")
    return done


def trim_heap() -> None:
    """Return the C heap's free pages to the system.

    Model weights are allocated in pieces below the mmap threshold, so freeing a model leaves its
    pages in the heap: without this the server's RSS stays at the loaded size after an unload
    (measured with musicgen-small on CPU: 2.6 GB after unload, 0.54 GB after ``malloc_trim``).
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def release_memory(device: str | None) -> None:
    """Give a dropped model's memory back: collect garbage, trim the heap, empty the accelerator's cache.

    Args:
        device: the torch device the model ran on (None when nothing was ever loaded).
    """
    gc.collect()
    trim_heap()
    if device is None:
        return
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device == "mps":
        torch.mps.empty_cache()
