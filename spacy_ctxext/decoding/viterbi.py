"""Constrained Viterbi over per-token BIO scores, exact and fast on long documents.

The classifier scores every token on its own, so its per-token argmax can break the
BIO grammar (``I-X`` after ``O``). Transitions carry no learned score, they are only
allowed or forbidden, so the best valid sequence is a Viterbi path over the emissions.
A per-position Viterbi loop is far too slow for documents of a million tokens, so
``constrained_viterbi`` runs it only over the few short segments that need it.
"""

from typing import List, Optional, Sequence, Union

import numpy as np

from ..arrays import row_max
from .bio import transition_rules


def constrained_viterbi(
    log_probs: np.ndarray, allowed: np.ndarray, start_allowed: np.ndarray
) -> np.ndarray:
    """The highest-scoring tag sequence (sum of ``log_probs``) that obeys the rules."""
    log_probs, allowed = np.asarray(log_probs), np.asarray(allowed)
    if log_probs.ndim != 2 or log_probs.shape[1] != len(allowed):
        raise ValueError(f"Expected scores of shape (N, {len(allowed)}), got {log_probs.shape}.")
    seq_starts = np.zeros(min(len(log_probs), 1), dtype=np.int64)
    return _decode_concatenated(log_probs, seq_starts, allowed, np.asarray(start_allowed))


def decode_joined(
    log_probs: np.ndarray, lengths: np.ndarray, tag_names: Sequence[str]
) -> List[np.ndarray]:
    """``constrained_viterbi`` of each of the sequences laid end to end in ``log_probs``
    (``lengths`` rows each); the results are views of one array.

    The sequence starts are forced segment boundaries: the argmax is kept wherever it
    is valid, and all segments that need Viterbi, from every sequence, advance together
    in one vectorised loop.
    """
    if len(lengths) == 0:
        return []
    allowed, start_allowed = transition_rules(tag_names)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    seq_starts = offsets[:-1][np.asarray(lengths) > 0]
    tags = _decode_concatenated(log_probs, seq_starts, allowed, start_allowed)
    return np.split(tags, offsets[1:-1])


# Why decoding only some segments is exact.
#
# Call a tag *free* if it may follow any tag and start a sequence (O and B-X). For a
# non-free tag s (I-X) let sub(s) be a free tag that allows every successor s allows
# (B-X). Position c >= 1 is a *cut* if its argmax is free and for every non-free s,
# with a = argmax at c-1:
#     score[c, s] - score[c, sub(s)] <= slack,
#     slack = score[c-1, a] - max(score[c-1, p] for p allowed before s) if a is free,
#     slack = 0 otherwise.
# Take any valid path P with P[c] = s non-free. Setting P[c] = sub(s) keeps it valid
# (sub(s) follows anything and precedes all that s precedes) and loses at most the
# gain; if a is free, also setting P[c-1] = a stays valid and wins back the slack. So
# some optimal path has a free tag at every cut (fix cuts left to right: a fix only
# puts free tags at c-1 and c, so earlier cuts stay fixed). A free tag follows
# anything, so the segments between cuts are independent problems whose first tag
# must be free, each solved by its argmax when that is valid there. Only segments
# holding a violation need Viterbi. The argument holds for any subset of the cuts, so
# only those near violations need testing. Confident O stretches are cuts almost
# everywhere, so those segments are short; without any cut this is plain full Viterbi.
def _decode_concatenated(
    scores: np.ndarray, seq_starts: np.ndarray, allowed: np.ndarray, start_allowed: np.ndarray
) -> np.ndarray:
    """Decode independent sequences laid end to end, starting at ``seq_starts``."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)  # room for the -inf of forbidden moves
    best = scores.argmax(axis=1).astype(np.int64)
    broken = np.zeros(len(best), dtype=bool)
    broken[1:] = ~allowed[best[:-1], best[1:]]
    broken[seq_starts] = ~start_allowed[best[seq_starts]]
    if not broken.any():
        return best  # every other valid path scores at most the sum of the maxima
    violations = np.flatnonzero(broken)
    free = allowed.all(axis=0) & start_allowed
    cuts = _find_cuts(scores, best, allowed, free, seq_starts, violations)
    ends = np.append(cuts[1:], len(best))
    segment = np.searchsorted(cuts, violations, side="right") - 1  # sorted
    bad = segment[np.append(True, segment[1:] != segment[:-1])]
    entry = np.where(np.isin(cuts[bad], seq_starts)[:, None], start_allowed, free)
    tags = best.copy()
    _viterbi_segments(scores, cuts[bad], ends[bad] - cuts[bad], entry, allowed, tags)
    return tags


def _find_cuts(
    scores: np.ndarray,
    best: np.ndarray,
    allowed: np.ndarray,
    free: np.ndarray,
    seq_starts: np.ndarray,
    violations: np.ndarray,
) -> np.ndarray:
    """Sorted cut positions, enough to bound each segment that holds a violation.

    Positions are tested only in windows around the violations, widened until each
    such segment lies inside them: it is then the same as with every cut known.
    """
    substitutes = _substitutes(allowed, free)
    if substitutes is None:
        return seq_starts
    size = len(best)
    radius = 16
    rows: Union[slice, np.ndarray]
    previous: Union[slice, np.ndarray]
    while True:
        # Once the windows would cover much of the sequence, testing everywhere is cheaper.
        if len(violations) * (2 * radius + 1) * 4 >= size:
            checked = np.arange(1, size)
            rows, previous = slice(1, size), slice(0, size - 1)  # slices spare two copies
        else:
            windows = violations[:, None] + np.arange(-radius, radius + 1)
            in_window = np.zeros(size, dtype=bool)
            in_window[np.clip(windows, 1, size - 1)] = True
            checked = rows = np.flatnonzero(in_window)
            previous = checked - 1
        passed = _is_cut(
            scores[rows], scores[previous], best[rows], best[previous], free, substitutes
        )
        cut_mask = np.zeros(size, dtype=bool)
        cut_mask[seq_starts] = True
        cut_mask[checked[passed]] = True
        cuts = np.flatnonzero(cut_mask)
        segment = np.searchsorted(cuts, violations, side="right") - 1
        starts, ends = cuts[segment], np.append(cuts[1:], size)[segment]
        inside = np.searchsorted(checked, ends) - np.searchsorted(checked, starts, side="right")
        if len(checked) == size - 1 or np.array_equal(inside, ends - starts - 1):
            return cuts
        radius *= 8


def _substitutes(allowed: np.ndarray, free: np.ndarray) -> Optional[dict]:
    """Per non-free tag: a free tag allowing all its successors, and its predecessors."""
    substitutes = {}
    for tag in np.flatnonzero(~free):
        covers = np.flatnonzero(free & (allowed | ~allowed[tag]).all(axis=1))
        if covers.size == 0:
            return None  # no exchange argument for this tag: no cuts
        substitutes[int(tag)] = (int(covers[0]), allowed[:, tag])
    return substitutes


def _is_cut(
    current: np.ndarray,
    previous: np.ndarray,
    current_best: np.ndarray,
    previous_best: np.ndarray,
    free: np.ndarray,
    substitutes: dict,
) -> np.ndarray:
    """The cut test of the comment above, for rows of scores and the rows before them."""
    # A cut whose own argmax is not free would open its segment with a violation;
    # leaving it out is exact and keeps the violations as they are.
    passed = free[current_best]
    previous_top = row_max(previous)
    previous_free = free[previous_best]
    # inf - inf gives nan, which compares False: no cut, which is always safe.
    with np.errstate(invalid="ignore"):
        for tag, (sub, predecessors) in substitutes.items():
            if not predecessors.any():
                continue  # the tag never follows another one
            gain = current[:, tag] - current[:, sub]
            slack = previous_top - row_max(previous, np.flatnonzero(predecessors).tolist())
            passed &= gain <= np.where(previous_free, slack, 0.0)
    return passed


def _viterbi_segments(
    scores: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    entry: np.ndarray,
    allowed: np.ndarray,
    out: np.ndarray,
) -> None:
    """Exact Viterbi over each segment, writing the tags into ``out``.

    All segments advance together, one position per step. Sorted longest first, the
    segments still running at a step are a prefix, so no step computes padding, and
    laying their rows out step by step makes every step read and write plain slices.
    """
    order = np.argsort(-lengths, kind="stable")
    starts, lengths, entry = starts[order], lengths[order], entry[order]
    running = np.searchsorted(-lengths, -np.arange(lengths[0]), side="left")
    bounds = np.concatenate([[0], np.cumsum(running)])
    steps = np.repeat(np.arange(lengths[0]), running)
    positions = starts[np.arange(bounds[-1]) - np.repeat(bounds[:-1], running)] + steps
    # A floor for -inf scores keeps some valid path finite, so the result is always valid.
    emissions = np.maximum(scores[positions], -1e30)
    penalty = np.where(allowed, 0.0, -np.inf).astype(emissions.dtype)
    delta = emissions[: len(starts)] + np.where(entry, 0.0, -np.inf).astype(emissions.dtype)
    back = np.empty(emissions.shape, dtype=np.intp)
    # Python ints for the bounds: indexing with numpy scalars costs more than the step.
    for lo, hi in zip(bounds[1:-1].tolist(), bounds[2:].tolist()):
        candidates = delta[: hi - lo, :, None] + penalty
        back[lo:hi] = candidates.argmax(axis=1)
        delta[: hi - lo] = candidates.max(axis=1) + emissions[lo:hi]
    tags = delta.argmax(axis=1)
    path = np.empty(len(positions), dtype=np.int64)
    rows = np.arange(len(starts))
    for lo, hi in zip(bounds[-2:0:-1].tolist(), bounds[:1:-1].tolist()):
        path[lo:hi] = tags[: hi - lo]
        tags[: hi - lo] = back[lo:hi][rows[: hi - lo], tags[: hi - lo]]
    path[: len(starts)] = tags
    out[positions] = path
