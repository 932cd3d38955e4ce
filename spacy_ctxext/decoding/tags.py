"""From tag scores to entities on the docs: the decoding policy of ``ctx_ner``.

``decode_docs`` turns a batch's per-token tag logits into valid BIO tags (one joined
constrained Viterbi for all docs) and keeps the normalised scores for confidences;
``set_batch_entities`` writes each doc's entities to ``doc.ents`` and a span group
(``set_doc_entities`` for one doc).
"""

from typing import List, NamedTuple, Optional, Sequence, cast

import numpy as np
from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.strings import StringStore
from spacy.tokens import Doc, Span, SpanGroup
from thinc.types import Ints2d

from ..planning.arrays import row_max, row_sum
from .bio import Span as SpanTuple
from .bio import entity_bounds, tag_kinds
from .viterbi import decode_joined

__all__ = [
    "DocTags",
    "log_softmax",
    "decode_docs",
    "span_confidences",
    "set_doc_entities",
    "set_batch_entities",
]


class DocTags(NamedTuple):
    """One doc's decoded tags (N,) and its tag log-probabilities (N, tags)."""

    tags: np.ndarray
    log_probs: np.ndarray


def log_softmax(scores: np.ndarray, axis: int = -1, *, inplace: bool = False) -> np.ndarray:
    """``log(softmax(scores))``; ``inplace`` reuses a floating ``scores`` array.

    Normalised in blocks of rows, each shifted by its maximum (so ``exp`` cannot
    overflow): the ``exp`` array is one block's, not the size of ``scores`` (40 MB
    for a million tokens of 9 tags). ``logaddexp.reduce`` needs no such array but is
    about three times slower.
    """
    scores = np.asarray(scores)
    dtype = np.result_type(scores, np.float32)
    result = scores if inplace and scores.dtype == dtype else scores.astype(dtype)
    if result.size == 0:
        return result
    rows = np.moveaxis(result, axis, -1)  # a view: writing to it writes to result
    rows = rows[None] if rows.ndim == 1 else rows
    for start in range(0, len(rows), _ROWS_PER_BLOCK):
        _normalise_rows(rows[start : start + _ROWS_PER_BLOCK])
    return result


_ROWS_PER_BLOCK = 65_536


def _normalise_rows(rows: np.ndarray) -> None:
    """Subtract from each row (last axis) its log-sum-exp, in place."""
    peak = row_max(rows)[..., None]
    # The sum in float64 and the log-sum-exp rounded to the rows' type before it is
    # subtracted, as logaddexp.reduce rounded it: a float32 sum near 1 would turn
    # logits that differ in their last bits (the same doc in another batch) into
    # log-probabilities (and confidences) that differ in theirs.
    sums = row_sum(np.exp(rows - peak))[..., None]
    # A row of -inf gets nan, as logaddexp.reduce gave it (-inf - -inf).
    rows -= (peak + np.log(sums)).astype(rows.dtype)


def decode_docs(docs: Sequence[Doc], logits: np.ndarray, tag_names: Sequence[str]) -> List[DocTags]:
    """Valid BIO tags per doc from the logits of all the docs' tokens, laid end to end.

    One array, normalised and masked in place: per token this keeps memory to the
    logits, a mask and the tags (a million-token doc would otherwise hold several
    copies of its (tokens x tags) scores).
    """
    log_probs = log_softmax(logits, axis=-1, inplace=True)
    # A whitespace token has no wordpieces, so its scores carry no evidence. spaCy's
    # gold tags it O, or I inside an entity ("New\nYork"), never B or last: it gets
    # no B tags and equal scores otherwise, so it continues an entity only between
    # two of its tokens (a tie at the end goes to O, the first tag).
    space = np.concatenate([doc.to_array("IS_SPACE") for doc in docs]).astype(bool)
    is_begin = tag_kinds(tag_names)[0]
    log_probs[space] = np.where(is_begin, -np.inf, 0.0)
    lengths = np.asarray([len(doc) for doc in docs], dtype=np.int64)
    tags = decode_joined(log_probs, lengths, tag_names)
    return [DocTags(t, p) for t, p in zip(tags, np.split(log_probs, np.cumsum(lengths)[:-1]))]


def span_confidences(
    log_probs: np.ndarray, tag_ids: np.ndarray, spans: Sequence[SpanTuple]
) -> np.ndarray:
    """Per span, the lowest probability the model gives a decoded tag in it.

    The tokens are scored independently, so a span's probability (of all its decoded
    tags at once) is the product of these probabilities: the minimum is an upper bound
    of it, and unlike the product it does not shrink with the span's length.
    """
    bounds = np.array([(start, end) for start, end, _ in spans], dtype=np.int64).reshape(-1, 2)
    token_log_probs = _decoded_log_probs(np.asarray(log_probs), tag_ids)
    return _lowest_probabilities(token_log_probs, bounds[:, 0], bounds[:, 1])


def _decoded_log_probs(log_probs: np.ndarray, tag_ids: np.ndarray) -> np.ndarray:
    """Per token, the log-probability of its decoded tag."""
    tag_ids = np.asarray(tag_ids, dtype=np.int64)
    return log_probs[np.arange(len(tag_ids)), tag_ids]


def _lowest_probabilities(
    token_log_probs: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """``span_confidences`` of the spans ``[starts[i], ends[i])``, in order, not overlapping."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.float32)
    bounds = np.stack([starts, ends], axis=1).ravel()
    # reduceat reduces [bounds[i], bounds[i+1]): the even results are the spans, the odd
    # ones (from an end to the next start) are dropped. The appended 0.0 (probability 1)
    # makes an end at the last token a valid index.
    minima = np.minimum.reduceat(np.append(token_log_probs, 0.0), bounds)[::2]
    return np.clip(np.exp(minima), 0.0, 1.0).astype(np.float32)


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

    The spans and their confidences are found in one pass over all the docs' tags
    (numpy calls per batch rather than per doc), then split by doc.
    """
    if len(docs) == 0:
        return
    lengths = np.array([len(decoded.tags) for decoded in predictions], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tags = np.concatenate([np.asarray(decoded.tags, dtype=np.int64) for decoded in predictions])
    starts, ends = entity_bounds(tags, tag_names, offsets[:-1][lengths > 0])
    token_log_probs = [_decoded_log_probs(d.log_probs, d.tags) for d in predictions]
    confidences = _lowest_probabilities(np.concatenate(token_log_probs), starts, ends)
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
