"""Context windows in wordpiece space, and their packing into batches.

A window reads ``[start, end)`` and predicts only its core ``[core_start, core_end)``.
The cores partition the document, so every wordpiece (and every token) is predicted
by exactly one window, always from one with context on both sides where the document
has any: there is nothing to average.
"""

from dataclasses import dataclass
from typing import List, Optional

import numpy as np


def check_window(
    window: int, context: int, *, n_special: int = 0, positions: Optional[int] = None
) -> None:
    """Whether windows of ``window`` wordpieces (``n_special`` of them special tokens)
    fit ``positions`` and leave room to predict with ``context`` read on each side."""
    if positions is not None and window > positions:
        raise ValueError(
            f"window={window} needs more positions than the encoder has ({positions}): "
            "set max_position_embeddings (with position_extension 'copy' or 'interpolate', "
            "or rope_scaling for rotary encoders) or lower window."
        )
    room = window - n_special
    after = f" ({room} after {n_special} special tokens)" if n_special else ""
    if room < 1:
        raise ValueError(f"window must hold at least one wordpiece, got window={window}{after}.")
    if context < 0 or room - 2 * context < 1:
        raise ValueError(
            f"context={context} leaves no room to predict in a window of {window} "
            f"wordpieces{after}: each side's context must be smaller than half the window. "
            "Lower `context` or raise `window` (with `max_position_embeddings` if the encoder "
            "needs more positions)."
        )


@dataclass(frozen=True)
class Windows:
    """The windows of one document as wordpiece offsets, one row per window."""

    start: np.ndarray
    end: np.ndarray
    core_start: np.ndarray
    core_end: np.ndarray

    def __len__(self) -> int:
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        return self.end - self.start

    def locate(self, pieces: np.ndarray) -> np.ndarray:
        """The window whose core holds each wordpiece offset."""
        return np.searchsorted(self.core_start, pieces, side="right") - 1


def plan_windows(
    n_pieces: int,
    token_starts: np.ndarray,
    sentence_starts: np.ndarray,
    *,
    window: int,
    context: int,
    isolate_sentences: bool = False,
) -> Windows:
    """Cut ``n_pieces`` wordpieces into windows of at most ``window`` pieces.

    Cores hold at most ``window - 2 * context`` pieces and are cut at a sentence start
    when one falls in the second half of the core budget, else at a token start, else
    (a single token longer than a core) inside the token: nothing is ever truncated.
    Each window then takes as much context as fits, balanced around its core.

    isolate_sentences: every sentence is windowed on its own, without context (the
        sentence-level baseline): cores never span a sentence start and read nothing else.
    """
    offsets = np.array([0, n_pieces], dtype=np.int64)
    return plan_joined_windows(
        offsets,
        token_starts,
        sentence_starts,
        window=window,
        context=context,
        isolate_sentences=isolate_sentences,
    )


def plan_joined_windows(
    offsets: np.ndarray,
    token_starts: np.ndarray,
    sentence_starts: np.ndarray,
    *,
    window: int,
    context: int,
    isolate_sentences: bool = False,
) -> Windows:
    """``plan_windows`` of docs laid end to end, doc d's pieces at [offsets[d],
    offsets[d + 1]) and its (sorted) starts in the same offsets; no window leaves its doc.

    One call for a batch of docs: only docs (or, isolated, sentences) longer than a core
    are cut one by one.
    """
    check_window(window, context)
    offsets = np.asarray(offsets, dtype=np.int64)
    budget = window if isolate_sentences else window - 2 * context
    # The stretches no core crosses: docs, and isolated sentences.
    walls = [offsets, sentence_starts] if isolate_sentences else [offsets]
    bounds = np.unique(np.concatenate(walls)).astype(np.int64)
    preferred = np.zeros(0, dtype=np.int64) if isolate_sentences else sentence_starts
    core_starts = _cut_stretches(bounds, budget, token_starts, preferred)
    core_ends = np.append(core_starts[1:], offsets[-1])[: len(core_starts)].astype(np.int64)
    if isolate_sentences:
        return Windows(core_starts, core_ends, core_starts, core_ends)
    doc = np.searchsorted(offsets, core_starts, side="right") - 1
    before, after = core_starts - offsets[doc], offsets[doc + 1] - core_ends
    spare = window - (core_ends - core_starts)
    left = np.minimum(before, spare // 2)
    right = np.minimum(after, spare - left)
    left = np.minimum(before, spare - right)
    return Windows(core_starts - left, core_ends + right, core_starts, core_ends)


def _cut_stretches(bounds, budget, token_starts, sentence_starts) -> np.ndarray:
    """Core starts covering each stretch [bounds[i], bounds[i + 1])."""
    starts = bounds[:-1]
    # A stretch within the budget is one core; only longer ones are cut, one by one.
    long = np.flatnonzero(np.diff(bounds) > budget)
    if not len(long):
        return starts
    parts = []
    for before, i in zip(np.split(starts, long + 1), long.tolist()):
        cores = _cut_cores(starts[i], bounds[i + 1], budget, token_starts, sentence_starts)
        parts += [before[:-1], cores]
    return np.concatenate(parts + [starts[long[-1] + 1 :]])


def _cut_cores(start, stop, budget, token_starts, sentence_starts) -> np.ndarray:
    """Core starts covering [start, stop)."""
    starts: List[int] = []
    while start < stop:
        starts.append(start)
        limit = start + budget
        if limit >= stop:
            break
        cut = _last_between(sentence_starts, start + budget // 2, limit)
        if cut is None:
            cut = _last_between(token_starts, start, limit)
        start = limit if cut is None else cut
    return np.asarray(starts, dtype=np.int64)


def _last_between(cuts: np.ndarray, low: int, high: int):
    """The largest cut in ``(low, high]``, or None."""
    i = int(np.searchsorted(cuts, high, side="right")) - 1
    if i >= 0 and cuts[i] > low:
        return int(cuts[i])
    return None


def pack_by_budget(lengths: np.ndarray, budget: int) -> List[np.ndarray]:
    """Group window indices into batches of at most ``budget`` padded wordpieces.

    Windows are sorted by length and cut into consecutive runs that minimise the
    padded size plus a fixed cost per encoder call (``budget // 16`` wordpieces):
    one batch of mixed lengths can pad more than it saves. A window longer than the
    budget gets a batch of its own rather than being refused.
    """
    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order].astype(np.int64)
    overhead = budget // 16
    # best[j]: cheapest cost of the first j windows; cut[j]: where its last batch starts.
    best = np.zeros(len(ordered) + 1, dtype=np.int64)
    cut = np.zeros(len(ordered) + 1, dtype=np.int64)
    for j in range(1, len(ordered) + 1):
        longest = int(ordered[j - 1])
        fit = max(1, budget // max(longest, 1))
        starts = np.arange(max(0, j - fit), j)
        costs = best[starts] + (j - starts) * longest + overhead
        k = int(np.argmin(costs))
        best[j], cut[j] = costs[k], starts[k]
    batches: List[np.ndarray] = []
    j = len(ordered)
    while j > 0:
        batches.append(order[cut[j] : j])
        j = int(cut[j])
    return batches[::-1]
