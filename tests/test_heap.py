"""The server's allocator (glibc): freed blocks stay in the heap while it works and go back on unload."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Allocates 100 blocks of 1 MB, frees them, then trims; prints RSS in MB at each point.
PROBE = """
import sys
from audiocraft_webui import heap

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024

tuned = heap.tune_allocator() if sys.argv[1] == "tune" else False
blocks = [bytearray(1 << 20) for _ in range(100)]
for block in blocks:
    block[::4096] = b"\\1" * len(block[::4096])
full = rss()
del blocks, block
freed = rss()
heap.trim_heap()
print(tuned, full, freed, rss())
"""


def probe(mode: str) -> tuple[str, int, int, int]:
    """Run the probe in a fresh process (the allocator settings are process-wide)."""
    result = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    tuned, full, freed, trimmed = result.stdout.split()
    return tuned, int(full), int(freed), int(trimmed)


def test_tuned_heap_keeps_freed_blocks_until_trimmed():
    tuned, full, freed, trimmed = probe("tune")
    assert tuned == "True"
    assert freed > full - 10, "1 MB blocks stay in the heap after free (no mmap/munmap and page faults per step)"
    assert trimmed < full - 80, "trim_heap gives them back (the RSS after an unload)"
    default_tuned, default_full, default_freed, _ = probe("default")
    assert default_tuned == "False"
    assert default_freed < default_full - 80, "without tuning glibc returns 1 MB blocks at once"
