"""Writing a batch's decoded entities to its docs: ``doc.ents`` (replacing the doc's entities, or
keeping them and adding only what touches none of their tokens) and the span group
``doc.spans[spans_key]`` with each entity's confidence in ``attrs["scores"]``.
"""

from typing import List, NamedTuple, Optional, Sequence, cast

import numpy as np
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.strings import StringStore
from spacy.tokens import Doc, Span, SpanGroup
from thinc.types import Ints2d

from ..decoding.bio import tag_kinds
from ..decoding.tags import DocTags, batch_spans


def set_doc_entities(
    doc: Doc, decoded: DocTags, tag_names: Sequence[str], *, spans_key: str, overwrite: bool
) -> None:
    """``doc.ents`` and ``doc.spans[spans_key]`` (with ``attrs["scores"]``) from the tags.

    overwrite: replace the doc's entities, or keep them and add only the predicted
        entities that touch none of their tokens.
    """
    set_batch_entities([doc], [decoded], tag_names, spans_key=spans_key, overwrite=overwrite)


def set_batch_entities(
    docs: Sequence[Doc],
    predictions: Sequence[DocTags],
    tag_names: Sequence[str],
    *,
    spans_key: str,
    overwrite: bool,
) -> None:
    """``set_doc_entities`` for each doc, with its prediction (docs of one vocab).

    The spans and their confidences are found for the whole batch (``batch_spans``),
    then split by doc.
    """
    if len(docs) == 0:
        return
    tags, offsets, starts, ends, confidences = batch_spans(predictions, tag_names)
    labels = _label_ids(docs[0].vocab.strings, tag_names, tags[starts])
    doc_spans = np.searchsorted(starts, offsets)  # doc i's spans: doc_spans[i]:doc_spans[i+1]
    doc_starts = np.repeat(offsets[:-1], np.diff(doc_spans))
    found = _DocSpans(
        (starts - doc_starts).tolist(),
        (ends - doc_starts).tolist(),
        labels.tolist(),
        confidences.tolist(),
    )
    columns = _entity_columns(len(tags), starts, ends, labels) if overwrite else None
    span_bounds, token_bounds = doc_spans.tolist(), offsets.tolist()  # ints slice faster
    for doc, first, stop, begin, end in zip(
        docs, span_bounds[:-1], span_bounds[1:], token_bounds[:-1], token_bounds[1:]
    ):
        doc_columns = None if columns is None else columns[begin:end]
        _write_entities(doc, found.between(first, stop), doc_columns, spans_key)


class _DocSpans(NamedTuple):
    """Spans as Python lists (one conversion per batch): first and end token, label id
    and confidence."""

    starts: List[int]
    ends: List[int]
    labels: List[int]
    confidences: List[float]

    def between(self, first: int, stop: int) -> "_DocSpans":
        """Spans ``first`` to ``stop`` (exclusive)."""
        part = slice(first, stop)
        return _DocSpans(
            self.starts[part], self.ends[part], self.labels[part], self.confidences[part]
        )


def _label_ids(strings: StringStore, tag_names: Sequence[str], tag_ids: np.ndarray) -> np.ndarray:
    """The string id of each tag's label: a Span made with a string looks it up (measured
    14 vs 11 ms for 20k spans; the random heads of the host benchmark make every token
    an entity). Only the labels found are added to the strings, as Span(label=...) would."""
    table = np.zeros(len(tag_names), dtype=np.uint64)
    labels = tag_kinds(tag_names)[2]
    for tag in np.unique(tag_ids).tolist():
        table[tag] = strings.add(labels[tag])
    return table[tag_ids]


# Token.iob_strings(): "", "I", "O", "B"
_IOB_I, _IOB_O, _IOB_B = 1, 2, 3


_ENTITY_ATTRS = [ENT_IOB, ENT_TYPE, ENT_KB_ID]


def _entity_columns(
    n_tokens: int, starts: np.ndarray, ends: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Per token, its ENT_IOB and ENT_TYPE with the given entities and no others (column
    2, ENT_KB_ID, is left to each doc)."""
    columns = np.zeros((n_tokens, len(_ENTITY_ATTRS)), dtype=np.uint64)
    opened = np.zeros(n_tokens + 1, dtype=np.int64)
    opened[starts] += 1
    opened[ends] -= 1
    covered = np.cumsum(opened[:-1]) > 0
    columns[:, 0] = np.where(covered, _IOB_I, _IOB_O)
    columns[starts, 0] = _IOB_B
    columns[covered, 1] = np.repeat(labels, ends - starts)
    return columns


def _write_entities(
    doc: Doc, found: _DocSpans, columns: Optional[np.ndarray], spans_key: str
) -> None:
    """``set_doc_entities``'s writing, for one doc's spans; ``columns`` (from
    ``_entity_columns``) replace the doc's entities, None keeps them."""
    spans = [Span(doc, *span) for span in zip(found.starts, found.ends, found.labels)]
    confidences = found.confidences
    if columns is not None:
        # What doc.set_ents(spans, default="outside") writes, 4x faster: set_ents checks
        # for overlaps with a Python set of tokens. It zeroes only entity tokens' KB ids.
        columns[:, 2] = np.where(columns[:, 0] == _IOB_O, doc.to_array(ENT_KB_ID), 0)
        doc.from_array(_ENTITY_ATTRS, cast(Ints2d, columns))  # spaCy types it with thinc's
    else:
        keep = _outside_existing(doc, found.starts, found.ends).tolist()
        spans = [span for span, kept in zip(spans, keep) if kept]
        confidences = [score for score, kept in zip(confidences, keep) if kept]
        # Every token was predicted: unannotated ones outside the kept spans are O.
        doc.set_ents(spans, outside=_unannotated_runs(doc, spans), default="unmodified")
    group = SpanGroup(doc, name=spans_key, spans=spans, attrs={"scores": confidences})
    doc.spans[spans_key] = group


def _outside_existing(doc: Doc, starts: List[int], ends: List[int]) -> np.ndarray:
    """Which predicted spans touch no token of an entity already on the doc."""
    taken = np.concatenate([[0], np.cumsum(doc.to_array("ENT_TYPE") != 0)])
    return taken[np.asarray(ends, dtype=np.int64)] - taken[np.asarray(starts, dtype=np.int64)] == 0


def _unannotated_runs(doc: Doc, spans: List[Span]) -> List[Span]:
    """Runs of tokens with no entity annotation (ENT_IOB 0) that no span covers."""
    free = doc.to_array("ENT_IOB") == 0
    for span in spans:
        free[span.start : span.end] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[0], free.astype(np.int8), [0]])))
    return [doc[start:end] for start, end in zip(edges[::2], edges[1::2])]
