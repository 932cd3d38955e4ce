"""numpy building blocks of the host path: runs laid end to end, key tables, and
reductions over a short axis.

A batch's docs, words or windows are handled as runs of one flat array (one numpy call
for the whole batch instead of one per doc); spaCy's 64-bit hashes (ORTH, attribute
values) map to small ids through numpy tables instead of Python dicts.
"""

from typing import Optional, Sequence

import numpy as np


def run_starts(lengths: np.ndarray) -> np.ndarray:
    """Where each of consecutive runs of ``lengths`` starts."""
    starts = np.zeros(len(lengths), dtype=np.int64)
    starts[1:] = np.cumsum(lengths)[:-1]
    return starts


def ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices of the runs [start, start + length), one after another."""
    shift = np.repeat(starts - run_starts(lengths), lengths)
    return shift + np.arange(len(shift), dtype=np.int64)


def sorted_lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, missing: int):
    """``values[i]`` where ``keys[i] == query`` (``keys`` sorted), else ``missing``."""
    if not len(keys):
        return np.full(len(queries), missing, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[at] == queries, values[at], missing)


FIBONACCI_HASH = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: spreads any keys


class KeyTable:
    """A map of uint64 keys to int64 values: open addressing with linear probing in
    numpy arrays, so a batch of lookups or inserts is a few vectorised passes. A lookup
    reads ~1.5 slots (the table is at most half full) where a binary search over sorted
    keys reads ~log2(n), scattered: measured 4x faster for 13k queries in 20k keys, and
    an insert costs its keys, not a copy of the table. Not thread-safe: a table shared
    between threads is used under its owner's lock.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._allocate(max(2, 1 << (capacity - 1).bit_length()))
        self.size = 0

    def _allocate(self, capacity: int) -> None:
        self.keys = np.zeros(capacity, np.uint64)
        self.values = np.zeros(capacity, np.int64)
        self.used = np.zeros(capacity, bool)
        self.shift = np.uint64(64 - (capacity.bit_length() - 1))

    def __len__(self) -> int:
        return self.size

    def _homes(self, keys: np.ndarray) -> np.ndarray:
        return ((np.asarray(keys, np.uint64) * FIBONACCI_HASH) >> self.shift).astype(np.int64)

    def get(self, queries: np.ndarray, missing: int = -1) -> np.ndarray:
        """The value of each query, ``missing`` where the table lacks it."""
        queries = np.asarray(queries, np.uint64)
        found = np.full(len(queries), missing, dtype=np.int64)
        pending, slot = np.arange(len(queries)), self._homes(queries)
        mask = len(self.keys) - 1
        while len(pending):
            occupied = self.used[slot]
            hit = occupied & (self.keys[slot] == queries[pending])
            found[pending[hit]] = self.values[slot[hit]]
            more = occupied & ~hit
            pending, slot = pending[more], (slot[more] + 1) & mask
        return found

    def insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add these keys (unique, none already here) with their values."""
        keys, values = np.asarray(keys, np.uint64), np.asarray(values, np.int64)
        if 2 * (self.size + len(keys)) > len(self.keys):
            self._grow(2 * (self.size + len(keys)))
        pending, slot = np.arange(len(keys)), self._homes(keys)
        mask = len(self.keys) - 1
        while len(pending):
            free = np.flatnonzero(~self.used[slot])
            # Keys wanting one free slot: one takes it (whichever write lands in the free
            # slot's unused value), the others probe on. No sort, unlike np.unique.
            self.values[slot[free]] = free
            taking = free[self.values[slot[free]] == free]
            placed = slot[taking]
            self.keys[placed], self.values[placed] = keys[pending[taking]], values[pending[taking]]
            self.used[placed] = True
            waiting = np.ones(len(pending), dtype=bool)
            waiting[taking] = False
            pending, slot = pending[waiting], (slot[waiting] + 1) & mask
        self.size += len(keys)

    def _grow(self, at_least: int) -> None:
        keys, values = self.keys[self.used], self.values[self.used]
        self._allocate(1 << (at_least - 1).bit_length())
        self.size = 0
        self.insert(keys, values)


# Reductions over a short last axis (a tag axis of 9-13): numpy reduces an (N, 13)
# array row by row, ~10x slower than these passes over its columns (measured 1.47 ms
# vs 0.13 ms for the max of 20,760 x 13 float32; 0.64 vs 0.42 ms for the sum). Not
# argmax: numpy's own is faster than any pass over columns tried.


def row_max(rows: np.ndarray, columns: Optional[Sequence[int]] = None) -> np.ndarray:
    """``rows[..., columns].max(axis=-1)`` (all columns by default), the same values
    (NaN propagates as there), without copying the columns."""
    columns = range(rows.shape[-1]) if columns is None else columns
    first, *others = columns
    top = rows[..., first].copy()
    for k in others:
        np.maximum(top, rows[..., k], out=top)
    return top


def row_sum(rows: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The sum over the last axis in ``dtype``, column after column."""
    total = rows[..., 0].astype(dtype)
    for k in range(1, rows.shape[-1]):
        total += rows[..., k]
    return total
