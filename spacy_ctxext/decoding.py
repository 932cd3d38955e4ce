"""From tag scores to entities on the docs: the decoding policy of ``ctx_ner``.

``decode_docs`` turns a batch's per-token tag logits into valid BIO tags (one joined
constrained Viterbi for all docs) and keeps the normalised scores for confidences;
``set_doc_entities`` writes one doc's entities to ``doc.ents`` and a span group.
"""

from typing import List, NamedTuple, Sequence

import numpy as np
from spacy.tokens import Doc, Span, SpanGroup

from .bio import Span as SpanTuple
from .bio import tag_kinds, tags_to_spans
from .viterbi import decode_joined

__all__ = ["DocTags", "log_softmax", "decode_docs", "span_confidences", "set_doc_entities"]


class DocTags(NamedTuple):
    """One doc's decoded tags (N,) and its tag log-probabilities (N, tags)."""

    tags: np.ndarray
    log_probs: np.ndarray


def log_softmax(scores: np.ndarray, axis: int = -1, *, inplace: bool = False) -> np.ndarray:
    """``log(softmax(scores))``; ``inplace`` reuses a floating ``scores`` array.

    ``logaddexp.reduce`` normalises without an ``exp`` array the size of ``scores``
    (40 MB for a million tokens of 9 tags) and cannot overflow.
    """
    scores = np.asarray(scores)
    dtype = np.result_type(scores, np.float32)
    result = scores if inplace and scores.dtype == dtype else scores.astype(dtype)
    result -= np.logaddexp.reduce(result, axis=axis, keepdims=True)
    return result


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
    if len(spans) == 0:
        return np.zeros(0, dtype=np.float32)
    tag_ids = np.asarray(tag_ids, dtype=np.int64)
    token_log_probs = np.take_along_axis(np.asarray(log_probs), tag_ids[:, None], axis=1)[:, 0]
    bounds = np.array([(start, end) for start, end, _ in spans], dtype=np.int64).ravel()
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
    found = tags_to_spans(decoded.tags, tag_names)
    confidences = span_confidences(decoded.log_probs, decoded.tags, found)
    # Labels as their ids: a Span made with a string looks it up (measured 14 vs 11 ms for
    # 20k spans; the random heads of the host benchmark make every token an entity).
    label_ids = {label: doc.vocab.strings.add(label) for label in {f[2] for f in found}}
    spans = [Span(doc, start, end, label=label_ids[label]) for start, end, label in found]
    if overwrite:
        doc.set_ents(spans, default="outside")
    else:
        keep = _outside_existing(doc, found)
        spans = [s for s, k in zip(spans, keep) if k]
        confidences = confidences[keep]
        # Every token was predicted: unannotated ones outside the kept spans are O.
        doc.set_ents(spans, outside=_unannotated_runs(doc, spans), default="unmodified")
    doc.spans[spans_key] = SpanGroup(
        doc, name=spans_key, spans=spans, attrs={"scores": confidences.tolist()}
    )


def _outside_existing(doc: Doc, found: List[SpanTuple]) -> np.ndarray:
    """Which predicted spans touch no token of an entity already on the doc."""
    taken = np.concatenate([[0], np.cumsum(doc.to_array("ENT_TYPE") != 0)])
    starts = np.asarray([s for s, _, _ in found], dtype=np.int64)
    ends = np.asarray([e for _, e, _ in found], dtype=np.int64)
    return taken[ends] - taken[starts] == 0


def _unannotated_runs(doc: Doc, spans: List[Span]) -> List[Span]:
    """Runs of tokens with no entity annotation (ENT_IOB 0) that no span covers."""
    free = doc.to_array("ENT_IOB") == 0
    for span in spans:
        free[span.start : span.end] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[0], free.astype(np.int8), [0]])))
    return [doc[start:end] for start, end in zip(edges[::2], edges[1::2])]
