"""From tag scores to entities on the docs: the decoding policy of ``ctx_ner``.

``decode_docs`` turns a batch's per-token tag logits into valid BIO tags (one joined
constrained Viterbi for all docs) and keeps the normalised scores; ``batch_spans`` finds
the entities of a batch's tags with their confidences, which ``pipeline.entities`` writes
to the docs.
"""

from typing import List, NamedTuple, Sequence

import numpy as np
from spacy.tokens import Doc

from ..arrays import row_max, row_sum
from .bio import Span as SpanTuple
from .bio import entity_bounds, tag_kinds
from .viterbi import decode_joined

__all__ = ["DocTags", "BatchSpans", "log_softmax", "decode_docs", "batch_spans", "span_confidences"]


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


class BatchSpans(NamedTuple):
    """The entities of a batch of docs, over the docs' tokens joined end to end."""

    tags: np.ndarray  # (n_tokens,) every token's decoded tag id
    offsets: np.ndarray  # (n_docs + 1,) where each doc's tokens start, then the total
    starts: np.ndarray  # (n_spans,) each entity's first token, in order
    ends: np.ndarray  # (n_spans,) and its end (exclusive)
    confidences: np.ndarray  # (n_spans,) float32, as ``span_confidences``


def batch_spans(predictions: Sequence[DocTags], tag_names: Sequence[str]) -> BatchSpans:
    """Every entity of the docs' decoded tags and its confidence, found in one pass over
    the batch (numpy calls per batch rather than per doc)."""
    lengths = np.array([len(decoded.tags) for decoded in predictions], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tags = np.concatenate([np.asarray(decoded.tags, dtype=np.int64) for decoded in predictions])
    starts, ends = entity_bounds(tags, tag_names, offsets[:-1][lengths > 0])
    token_log_probs = [_decoded_log_probs(d.log_probs, d.tags) for d in predictions]
    confidences = _lowest_probabilities(np.concatenate(token_log_probs), starts, ends)
    return BatchSpans(tags, offsets, starts, ends, confidences)


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
