"""``spacy-ctxext.context_windows.v1``: sentence-aligned context windows as spaCy spans.

For a stock spacy-transformers ``transformer`` component. spacy-transformers' registry
finds it through the ``spacy_span_getters`` entry point (setup.cfg), so this module does
not import spacy-transformers, an extra. Windows are sized in
wordpieces with the encoder's own tokenizer when one is named, so they never exceed
its budget; each window is its core plus context on both sides, and consecutive
windows overlap by that context.
"""

from functools import lru_cache, partial
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np
from spacy.tokens import Doc, Span
from tokenizers import Tokenizer

from ..planning.windows import check_window, plan_windows
from ..tokenization.wordpieces import DocPieces, load_backend, special_tokens, tokenize_docs

__all__ = ["get_context_windows", "configure_context_windows"]

# Without a tokenizer, windows leave room for BERT's two ([CLS] and [SEP]).
ESTIMATED_SPECIALS = 2

SpannerT = Callable[[List[Doc]], List[List[Span]]]


def get_context_windows(
    docs: Iterable[Doc], *, window: int, context: int, tokenizer: Optional[str] = None
) -> List[List[Span]]:
    """Windows of ``window`` wordpieces, the tokenizer's special tokens included."""
    docs = list(docs)
    if tokenizer is None:
        room = window - ESTIMATED_SPECIALS
        pieces = [_estimated_pieces(doc) for doc in docs]
        return [_doc_windows(doc, p, room, context) for doc, p in zip(docs, pieces)]
    backend, (prefix, suffix) = _cached_backend(tokenizer)
    room = window - len(prefix) - len(suffix)
    check_window(window, context, n_special=len(prefix) + len(suffix))
    pieces = tokenize_docs(backend, docs)
    spans = [_doc_windows(doc, p, room, context) for doc, p in zip(docs, pieces)]
    return [_fit_alone(doc_spans, backend, room) for doc_spans in spans]


def _doc_windows(doc: Doc, pieces: DocPieces, window: int, context: int) -> List[Span]:
    if len(doc) == 0:
        return []
    if len(pieces) == 0:
        # Only whitespace-like tokens: one window still covers them.
        return [doc[:]]
    plan = plan_windows(
        len(pieces), pieces.token_starts, pieces.sentence_starts, window=window, context=context
    )
    # Token i spans wordpieces [piece_start[i], piece_start[i + 1]). A window keeps the
    # tokens wholly inside it, and always those starting in its core: a token longer
    # than a window cannot be cut as a Span, so it comes whole rather than not at all.
    # A token without pieces starts where the next token with pieces does, so that the
    # token before it keeps all of its own pieces.
    piece_start = np.where(pieces.token_piece >= 0, pieces.token_piece, len(pieces))
    piece_start = np.minimum.accumulate(piece_start[::-1])[::-1]
    piece_end = np.append(piece_start[1:], len(pieces))
    first = np.searchsorted(piece_start, plan.start, side="left")  # start <= core_start
    last = np.maximum(
        np.searchsorted(piece_end, plan.end, side="right"),
        np.searchsorted(piece_start, plan.core_end, side="left"),
    )
    keep = first < last
    bounds = np.unique(np.stack([first[keep], last[keep]], axis=1), axis=0)
    return [doc[int(s) : int(e)] for s, e in bounds]


def _fit_alone(spans: List[Span], backend: Tokenizer, budget: int) -> List[Span]:
    """Spans that fit ``budget`` when tokenized alone, as spacy-transformers does.

    A byte-level BPE tokenizer (RoBERTa's) splits a span's first word differently
    without the space before it, which can add pieces. Such a span gives up context
    tokens that a neighbouring span also holds (its first, else its last) until it fits;
    tokens no other span holds stay, so coverage is kept.
    """
    if not spans:
        return spans
    doc = spans[0].doc
    texts = [span.text for span in spans]
    lengths = [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]
    bounds = [[span.start, span.end] for span in spans]
    for i, length in enumerate(lengths):
        while length > budget:
            start, end = bounds[i]
            if i > 0 and start < bounds[i - 1][1] and end - start > 1:
                bounds[i][0] += 1
            elif i + 1 < len(bounds) and end > bounds[i + 1][0] and end - start > 1:
                bounds[i][1] -= 1
            else:
                break  # only this span holds its tokens (one token longer than a window)
            text = doc[bounds[i][0] : bounds[i][1]].text
            length = len(backend.encode(text, add_special_tokens=False).ids)
    return [doc[start:end] for start, end in bounds]


def _estimated_pieces(doc: Doc) -> DocPieces:
    """Without a tokenizer: about one wordpiece per four characters, at least one a token."""
    counts = np.asarray([1 + len(t.text) // 4 for t in doc], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sentence_starts = (
        starts[[s.start for s in doc.sents]] if doc.has_annotation("SENT_START") else starts[:1]
    )
    return DocPieces(np.zeros(int(counts.sum()), np.int64), starts, starts, sentence_starts)


@lru_cache(maxsize=4)
def _cached_backend(name: str) -> Tuple[Tokenizer, Tuple[List[int], List[int]]]:
    """The tokenizer's backend and its special tokens, read once per name (as
    ``ContextNet`` reads them once per loaded net), not once per batch of docs."""
    from transformers import AutoTokenizer

    from ..models.pytorch.net_loading import resolve_encoder_name

    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_name(name), use_fast=True)
    backend = load_backend(tokenizer)
    return backend, special_tokens(backend)


def configure_context_windows(
    window: int = 512, context: int = 64, tokenizer: Optional[str] = None
) -> SpannerT:
    """Sentence-aligned windows of ``window`` wordpieces (special tokens included),
    reading ``context`` wordpieces or more on each side of the part they add.

    tokenizer: the encoder's name or folder, for exact wordpiece counts; without it
        each token is estimated at one wordpiece per four characters.
    """
    check_window(window, context, n_special=ESTIMATED_SPECIALS)
    return partial(get_context_windows, window=window, context=context, tokenizer=tokenizer)
