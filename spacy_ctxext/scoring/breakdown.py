"""Entity F1 by where an entity stands in its document: where context pays.

A sentence read alone can name an entity as well as a whole document can the first time
it is mentioned; a repeat ("Cuttitta" after "Marcello Cuttitta") and a mention late in a
long document are where reading the rest of the document should help. Two breakdowns of
spaCy's exact-span entity P/R/F, each span (gold or predicted) put in one bucket by its
own place in the document, so that a bucket's precision and recall count the same spans:

- ``mention``: ``first`` if no earlier stretch of the document's text is the same string
  (bounded by non-word characters: "US" inside "USA" does not count), else ``repeat``;
- ``position``: which quarter of the document's text the span starts in.

Predicted spans are mapped to the gold tokens as spaCy's scorer maps them
(``Example.get_aligned_spans_x2y``), so the buckets' counts add up to its ``ents_p/r/f``.
"""

import re
from collections import defaultdict
from typing import Callable, Dict, Iterable, Set, Tuple

from spacy.scorer import PRFScore
from spacy.tokens import Doc, Span
from spacy.training import Example

__all__ = ["POSITION_BUCKETS", "mention_kind", "position_bucket", "entity_breakdown"]

POSITION_BUCKETS = ("0-25%", "25-50%", "50-75%", "75-100%")

SpanKey = Tuple[int, int, str]  # start_char, end_char, label


def mention_kind(doc: Doc, span: Span) -> str:
    """``repeat`` if the span's string occurs in ``doc.text`` before it, else ``first``."""
    pattern = r"(?<!\w)" + re.escape(span.text) + r"(?!\w)"
    earlier = re.search(pattern, doc.text[: span.end_char])
    return "repeat" if earlier is not None and earlier.start() < span.start_char else "first"


def position_bucket(doc: Doc, span: Span) -> str:
    """The quarter of ``doc.text`` that the span starts in."""
    quarter = 4 * span.start_char // max(len(doc.text), 1)
    return POSITION_BUCKETS[min(quarter, len(POSITION_BUCKETS) - 1)]


BUCKETINGS: Dict[str, Callable[[Doc, Span], str]] = {
    "mention": mention_kind,
    "position": position_bucket,
}


def entity_breakdown(examples: Iterable[Example]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """Per bucketing, per bucket: ``p``, ``r``, ``f`` and the ``gold`` and ``predicted``
    span counts, over the examples' reference docs with entity annotation."""
    scores: Dict[str, Dict[str, PRFScore]] = {name: defaultdict(PRFScore) for name in BUCKETINGS}
    counts: Dict[str, Dict[str, Dict[str, int]]] = {
        name: defaultdict(lambda: {"gold": 0, "predicted": 0}) for name in BUCKETINGS
    }
    for example in examples:
        reference = example.reference
        if not reference.has_annotation("ENT_IOB"):
            continue
        gold = list(reference.ents)
        predicted = example.get_aligned_spans_x2y(example.predicted.ents)
        for name, bucket_of in BUCKETINGS.items():
            gold_keys = _bucketed(reference, gold, bucket_of)
            pred_keys = _bucketed(reference, predicted, bucket_of)
            for bucket in set(gold_keys) | set(pred_keys):
                scores[name][bucket].score_set(
                    pred_keys.get(bucket, set()), gold_keys.get(bucket, set())
                )
                counts[name][bucket]["gold"] += len(gold_keys.get(bucket, ()))
                counts[name][bucket]["predicted"] += len(pred_keys.get(bucket, ()))
    return {
        name: {
            bucket: {**scores[name][bucket].to_dict(), **counts[name][bucket]}
            for bucket in sorted(scores[name], key=_bucket_order)
        }
        for name in BUCKETINGS
    }


def _bucketed(
    doc: Doc, spans: Iterable[Span], bucket_of: Callable[[Doc, Span], str]
) -> Dict[str, Set[SpanKey]]:
    buckets: Dict[str, Set[SpanKey]] = defaultdict(set)
    for span in spans:
        buckets[bucket_of(doc, span)].add((span.start_char, span.end_char, span.label_))
    return buckets


def _bucket_order(bucket: str) -> Tuple[int, str]:
    order = ("first", "repeat", *POSITION_BUCKETS)
    return (order.index(bucket) if bucket in order else len(order), bucket)
