"""Per-document entity counts, and the paired bootstrap that compares two runs by them.

On ten books a difference of 2 F1 can be the sample. Resampling the documents (the same
resample for both runs, which saw the same documents) says how much of a difference in
micro F1 the documents alone make: a gain counts when its 95% interval excludes 0.
Counts are exact-span matches as spaCy's scorer counts them, split as ``breakdown`` splits
mentions (``first``, ``repeat``), so a gain can be traced to first or repeated mentions.
"""

from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
from spacy.training import Example

from .breakdown import mention_kind

__all__ = ["doc_counts", "paired_bootstrap", "pool_runs"]

# One row per document: tp, fp, fn over all entities, then over first and repeated mentions.
COUNT_COLUMNS = (
    "tp",
    "fp",
    "fn",
    "first_tp",
    "first_fp",
    "first_fn",
    "repeat_tp",
    "repeat_fp",
    "repeat_fn",
)
SLICES = {"all": slice(0, 3), "first": slice(3, 6), "repeat": slice(6, 9)}


def doc_counts(examples: Iterable[Example]) -> List[List[int]]:
    """``COUNT_COLUMNS`` of each example with entity annotation, in order, counted as
    spaCy's ``get_ner_prf`` counts: a predicted entity is mapped to the gold tokens by
    the examples' alignment, and one over tokens without gold annotation is ignored."""
    rows = []
    for example in examples:
        reference = example.reference
        if not reference.has_annotation("ENT_IOB"):
            continue
        golds = {(e.label_, e.start, e.end): mention_kind(reference, e) for e in reference.ents}
        row = [0] * len(COUNT_COLUMNS)
        align = example.alignment.x2y
        for entity in example.predicted.ents:
            indices = align[entity.start : entity.end]
            if not len(indices):
                continue
            span = reference[indices[0] : indices[-1] + 1]
            if any(token.ent_iob == 0 for token in span):
                continue  # no gold annotation here: neither right nor wrong
            key = (entity.label_, indices[0], indices[-1] + 1)
            hit = 0 if key in golds else 1  # tp or fp
            kind = golds.pop(key) if key in golds else mention_kind(reference, span)
            row[hit] += 1
            row[3 + 3 * (kind == "repeat") + hit] += 1
        for kind in golds.values():
            row[2] += 1
            row[5 + 3 * (kind == "repeat")] += 1
        rows.append(row)
    return rows


def pool_runs(runs: Iterable[Tuple[str, Sequence[Sequence[int]]]]) -> np.ndarray:
    """One arm's ``doc_counts`` rows from several runs, as ``paired_bootstrap`` takes them.

    runs: (eval set, rows) per run. Runs on the same eval set (an arm's seeds) are summed
    per document; different eval sets (splits with disjoint dev documents) are stacked, in
    the order of their names, so two arms run on the same sets pair document by document.
    """
    by_set: Dict[str, np.ndarray] = {}
    for name, rows in runs:
        counts = np.asarray(rows, dtype=np.int64)
        if name in by_set and by_set[name].shape != counts.shape:
            raise ValueError(
                f"runs on eval set {name!r} count {len(by_set[name])} and {len(counts)} "
                "documents: they were not scored on the same documents"
            )
        by_set[name] = by_set[name] + counts if name in by_set else counts
    if not by_set:
        raise ValueError("pool_runs needs at least one run")
    return np.concatenate([by_set[name] for name in sorted(by_set)])


def _f1(counts: np.ndarray) -> np.ndarray:
    """Micro F1 (in %) of (..., 3) tp/fp/fn sums."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return 100 * np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)


def paired_bootstrap(
    counts_a: Sequence[Sequence[int]],
    counts_b: Sequence[Sequence[int]],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> Dict[str, Dict[str, float]]:
    """F1 of b minus F1 of a, per mention slice: the observed difference and the 2.5th and
    97.5th percentiles over ``resamples`` resamples of the documents (with replacement).

    counts_a, counts_b: ``doc_counts`` rows of the same documents in the same order
        (several seeds of one arm: their rows summed per document).
    """
    a, b = np.asarray(counts_a, dtype=np.int64), np.asarray(counts_b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 2 or not len(a):
        raise ValueError(
            f"paired counts need the same documents in both runs, got {a.shape} and {b.shape}"
        )
    picks = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    sums_a, sums_b = a[picks].sum(axis=1), b[picks].sum(axis=1)
    result = {}
    for name, columns in SLICES.items():
        observed = _f1(b[:, columns].sum(0)) - _f1(a[:, columns].sum(0))
        deltas = _f1(sums_b[:, columns]) - _f1(sums_a[:, columns])
        low, high = np.percentile(deltas, [2.5, 97.5])
        result[name] = {
            "f1_a": round(float(_f1(a[:, columns].sum(0))), 2),
            "f1_b": round(float(_f1(b[:, columns].sum(0))), 2),
            "delta": round(float(observed), 2),
            "low": round(float(low), 2),
            "high": round(float(high), 2),
        }
    return result
