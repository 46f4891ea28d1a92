"""Hand the memory a finished step freed back to the operating system.

Why: the in-process executor runs a job's steps one after another in one process (dbt included), and glibc's
malloc keeps the heap a step has freed (dlt's normalize buffers, the quality gate's query results) mapped for
reuse. The next step then starts from the last one's high-water mark, and a run's peak is the sum of its steps'
peaks instead of the largest of them. `malloc_trim` returns the free heap to the system; on a C library
without it (macOS, musl) this only collects garbage.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from typing import Any


@functools.cache
def _libc() -> Any | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None
    return libc if hasattr(libc, "malloc_trim") else None


def release_freed_memory() -> None:
    """Collect garbage, then return the heap it freed to the operating system (glibc)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
