"""Hand memory that the C heap holds but no longer uses back to the operating system."""

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Callable, Optional


@lru_cache(maxsize=1)
def _malloc_trim() -> Optional[Callable[[int], int]]:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def trim_heap() -> bool:
    """Release the free pages of every malloc arena (glibc); False where unsupported.

    Tokenizing a million-word doc frees ~100 MB of short-lived objects (Rust encodings,
    Python lists of offsets) between arrays that stay. glibc keeps those pages resident
    and the encoder's large activations do not fit in them, so without a trim they
    would add to the peak of everything that follows.
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
