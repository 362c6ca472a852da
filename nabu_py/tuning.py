"""Process-wide tuning for nodes that move bulk data (opt-in; `nabu daemon` applies it).

`tune_allocator()`: glibc's malloc serves every allocation above its mmap threshold (128 KiB at
start, adjusted upwards only after such a block is freed) with a fresh `mmap`, and gives it back with
`munmap`: every 1 MiB socket read, TLS record batch or HTTP body chunk then costs ~256 page faults and
the kernel zeroing the pages. Streaming bodies through the `/http` proxy allocates several such
buffers per MiB moved (socket reads, h11's receive buffer, hypercorn's copies). Measured on this kind of
machine (benchmarks/p2p_stream.py and a bare hypercorn upload): hypercorn received 256 MiB with 0.42 s
of CPU by default and 0.09 s with the thresholds below, moving 3-4x faster.

The thresholds keep blocks up to `mmap_threshold` (4 MiB) on the heap and let up to `trim_threshold`
(32 MiB) of freed heap stay mapped for reuse, so the cost is at most that much extra resident memory.
It is a no-op (returning False) where glibc's `mallopt` is not available (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Final

__all__ = ["tune_allocator"]

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD: Final = -1
M_MMAP_THRESHOLD: Final = -3
DEFAULT_MMAP_THRESHOLD: Final = 4 * 1024 * 1024
DEFAULT_TRIM_THRESHOLD: Final = 32 * 1024 * 1024


def tune_allocator(
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD, trim_threshold: int = DEFAULT_TRIM_THRESHOLD
) -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True if applied."""
    if not sys.platform.startswith("linux"):
        return False
    if not 0 < mmap_threshold <= 32 * 1024 * 1024 or trim_threshold < mmap_threshold:
        raise ValueError("need 0 < mmap_threshold <= 32 MiB and trim_threshold >= mmap_threshold")
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
    if not ok:
        log.info("mallopt refused the allocator thresholds; leaving malloc's defaults")
    return bool(ok)
