"""Returning freed heap memory to the OS (glibc's malloc_trim)."""

import numpy as np
import pytest

from spacy_ctxext.benchmark.measure import rss_mb
from spacy_ctxext.planning.heap import _malloc_trim, trim_heap


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_trim_returns_freed_heap_pages():
    # 100 kB blocks come from malloc's heap (mmap starts at 128 kB); keeping every
    # 20th one leaves the freed ones as holes that free() alone does not return.
    blocks = [np.ones(100_000 // 8) for _ in range(2000)]
    kept = blocks[::20]
    del blocks
    before = rss_mb("VmRSS")
    assert trim_heap() is True
    assert before - rss_mb("VmRSS") > 100
    assert all(block.sum() == len(block) for block in kept)  # live memory is untouched


def test_without_malloc_trim_nothing_happens(monkeypatch):
    monkeypatch.setattr("spacy_ctxext.planning.heap._malloc_trim", lambda: None)
    assert trim_heap() is False
