"""Plan a batch of docs for the encoder, in numpy: which wordpieces go in which padded row.

``plan_batch`` tokenizes each doc once, cuts it into windows and packs all windows of
the batch by length; each ``EncoderBatch`` is one padded encoder call and says where
its outputs go in the docs' token order. Nothing here touches torch: running a plan
is ``context_net.run_plan``.
"""

import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc
from tokenizers import Tokenizer

from .heap import trim_heap
from .windows import Windows, pack_by_budget, plan_windows
from .wordpieces import DocPieces, tokenize_docs

# Batches of at least this many tokens return the heap memory their tokenization freed
# (a trim walks every malloc arena: not worth it after a short doc's few kilobytes).
TRIM_AFTER_TOKENS = 100_000


SENTENCE_END_MARKS = (".", "!", "?")


class NoSentencesWarning(UserWarning):
    """isolate_sentences is set but docs arrive without sentence boundaries."""


@dataclass(frozen=True)
class EncoderBatch:
    """One padded encoder call and where its outputs go in the docs' token order.

    channel_ids: (rows, width, k) channel table rows of each wordpiece (0: nothing, as
    for special tokens and padding), or None for an encoder without channels.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    tokens: np.ndarray
    channel_ids: Optional[np.ndarray] = None


@dataclass(frozen=True)
class BatchPlan:
    batches: List[EncoderBatch]
    empty_tokens: np.ndarray
    doc_lengths: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.doc_lengths.sum())


def plan_batch(
    docs: Sequence[Doc],
    backend: Tokenizer,
    *,
    specials: Tuple[List[int], List[int]],
    pad_id: int,
    window: int,
    context: int,
    batch_wordpieces: int,
    isolate_sentences: bool = False,
    trim_after_tokens: Optional[int] = TRIM_AFTER_TOKENS,
    token_channels: Optional[Sequence[np.ndarray]] = None,
) -> BatchPlan:
    """Tokenize the docs once, cut them into windows, and pack all windows by length.

    trim_after_tokens: batches of at least this many tokens hand the heap memory their
        tokenization freed back to the OS (None: never).
    token_channels: per doc, (tokens, k) channel table rows, given to each token's pieces.
    """
    prefix, suffix = specials
    n_special = len(prefix) + len(suffix)
    if isolate_sentences:
        UNSENTENCED_DOCS.check(docs)
    pieces = tokenize_docs(backend, docs)
    plans = _doc_windows(pieces, window - n_special, context, isolate_sentences)
    lengths = np.concatenate([w.lengths for w in plans] + [np.zeros(0, np.int64)]) + n_special
    token_window, token_col, empty_tokens = _locate_tokens(pieces, plans, len(prefix))
    groups = pack_by_budget(lengths, batch_wordpieces)
    batch_of_window = np.zeros(len(lengths), dtype=np.int64)
    row_of_window = np.zeros(len(lengths), dtype=np.int64)
    for b, members in enumerate(groups):
        batch_of_window[members] = b
        row_of_window[members] = np.arange(len(members))
    # Group the tokens by batch with one sort instead of one scan of all tokens per batch.
    placed = np.flatnonzero(token_window >= 0)
    placed = placed[np.argsort(batch_of_window[token_window[placed]], kind="stable")]
    bounds = np.searchsorted(batch_of_window[token_window[placed]], np.arange(len(groups) + 1))
    owners = _window_owners(plans)
    piece_channels = _piece_channels(pieces, token_channels)  # None without channels
    batches = []
    for b, members in enumerate(groups):
        tokens = placed[bounds[b] : bounds[b + 1]]
        input_ids, mask = _pad_windows(members, owners, pieces, plans, lengths, specials, pad_id)
        rows, cols = row_of_window[token_window[tokens]], token_col[tokens]
        channel_ids = _pad_channels(members, owners, plans, piece_channels, mask, len(prefix))
        batches.append(EncoderBatch(input_ids, mask, *_int32(rows, cols, tokens), channel_ids))
    doc_lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
    if trim_after_tokens is not None and doc_lengths.sum() >= trim_after_tokens:
        trim_heap()
    return BatchPlan(batches, empty_tokens, doc_lengths)


def _doc_windows(
    pieces: List[DocPieces], window: int, context: int, isolate_sentences: bool
) -> List[Windows]:
    """Each doc's windows of ``window`` wordpieces (special tokens not counted)."""
    return [
        plan_windows(
            len(p),
            p.token_starts,
            p.sentence_starts,
            window=window,
            context=context,
            isolate_sentences=isolate_sentences,
        )
        for p in pieces
    ]


class _UnsentencedDocs:
    """Counts docs that seem to hold several sentences but have no sentence starts.

    The first batch that has any warns, once per process: a training run plans
    thousands of batches, and one warning with its counts says what there is to say.
    """

    def __init__(self) -> None:
        self.warned = False

    def check(self, docs: Sequence[Doc]) -> None:
        if self.warned:
            return
        # One-sentence docs need no sentence starts: gold_preproc makes such docs.
        missing = sum(
            not doc.has_annotation("SENT_START") and _several_sentences(doc) for doc in docs
        )
        if missing:
            self.warned = True
            warnings.warn(
                f"isolate_sentences is set but {missing} of {len(docs)} docs hold several "
                "sentences and no sentence boundaries, so each is windowed by the window "
                "budget alone. Add a 'sentencizer' or 'senter' before ctx_ner, or train on "
                "spacy-ctxext.GoldDocCorpus.v1, which keeps the gold sentence starts "
                "(spaCy's make_doc sets none). Shown once per process.",
                NoSentencesWarning,
                stacklevel=4,
            )


UNSENTENCED_DOCS = _UnsentencedDocs()


def _several_sentences(doc: Doc) -> bool:
    """Whether a sentence-final punctuation token comes before the doc's last token."""
    ends = [doc.vocab.strings[mark] for mark in SENTENCE_END_MARKS]
    return bool(np.isin(doc.to_array("ORTH")[:-1], ends).any())


def _locate_tokens(pieces: List[DocPieces], plans: List[Windows], n_prefix: int):
    """For every token of every doc: its window (global index) and column, or 'empty'."""
    windows, cols = [], []
    window_offset = 0
    for doc_pieces, plan in zip(pieces, plans):
        piece = doc_pieces.token_piece
        if len(plan) == 0:
            windows.append(np.full_like(piece, -1))
            cols.append(np.full_like(piece, -1))
            continue
        local = np.where(piece >= 0, plan.locate(np.maximum(piece, 0)), -1)
        col = np.where(piece >= 0, piece - plan.start[np.maximum(local, 0)] + n_prefix, -1)
        windows.append(np.where(local >= 0, local + window_offset, -1))
        cols.append(col)
        window_offset += len(plan)
    token_window = np.concatenate(windows + [np.zeros(0, np.int64)])
    token_col = np.concatenate(cols + [np.zeros(0, np.int64)])
    return token_window, token_col, np.flatnonzero(token_window < 0)


def _pad_windows(members, owners, pieces, plans, lengths, specials, pad_id):
    doc_of_window, local_of_window = owners
    prefix, suffix = specials
    width = int(lengths[members].max())
    input_ids = np.full((len(members), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(members), width), dtype=np.int32)
    for row, g in enumerate(members):
        d, k = doc_of_window[g], local_of_window[g]
        plan = plans[d]
        seq = np.concatenate([prefix, pieces[d].ids[plan.start[k] : plan.end[k]], suffix])
        input_ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return input_ids, mask


def _piece_channels(
    pieces: List[DocPieces], token_channels: Optional[Sequence[np.ndarray]]
) -> Optional[List[np.ndarray]]:
    """Per doc, (wordpieces, k) channel rows: each piece takes those of the token it
    belongs to (from the token's first piece to the next token's; a piece two tokens
    share belongs to the first). Pieces before the first token's get row 0."""
    if token_channels is None:
        return None
    out = []
    for doc_pieces, channel_rows in zip(pieces, token_channels):
        has_piece = np.flatnonzero(doc_pieces.token_piece >= 0)
        firsts, where = np.unique(doc_pieces.token_piece[has_piece], return_index=True)
        owner = np.searchsorted(firsts, np.arange(len(doc_pieces)), side="right") - 1
        rows = np.zeros((len(doc_pieces), channel_rows.shape[1]), dtype=np.int32)
        if len(firsts):
            tokens = has_piece[where[np.maximum(owner, 0)]]
            rows = np.where((owner >= 0)[:, None], channel_rows[tokens], rows).astype(np.int32)
        out.append(rows)
    return out


def _pad_channels(members, owners, plans, piece_channels, mask, n_prefix):
    """(rows, width, k) channel rows of a batch's windows; specials and padding get 0."""
    if piece_channels is None:
        return None
    doc_of_window, local_of_window = owners
    k = piece_channels[0].shape[1] if piece_channels else 0
    channel_ids = np.zeros(mask.shape + (k,), dtype=np.int32)
    for row, g in enumerate(members):
        d, w = doc_of_window[g], local_of_window[g]
        start, end = plans[d].start[w], plans[d].end[w]
        channel_ids[row, n_prefix : n_prefix + end - start] = piece_channels[d][start:end]
    return channel_ids


def _int32(
    rows: np.ndarray, cols: np.ndarray, tokens: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plan holds a million-word doc's batches until they run: half size, widened per call."""
    return rows.astype(np.int32), cols.astype(np.int32), tokens.astype(np.int32)


def _window_owners(plans: List[Windows]):
    counts = [len(p) for p in plans]
    doc_of_window = np.repeat(np.arange(len(plans)), counts)
    local_of_window = np.concatenate([np.arange(c) for c in counts] + [np.zeros(0, np.int64)])
    return doc_of_window, local_of_window.astype(np.int64)


def split_batch(batch: EncoderBatch) -> Tuple[EncoderBatch, EncoderBatch]:
    """The batch's windows (rows) in two halves, with their tokens and rows renumbered."""
    middle = len(batch.input_ids) // 2
    halves = []
    for low, high in ((0, middle), (middle, len(batch.input_ids))):
        keep = (batch.rows >= low) & (batch.rows < high)
        halves.append(
            EncoderBatch(
                input_ids=batch.input_ids[low:high],
                attention_mask=batch.attention_mask[low:high],
                rows=batch.rows[keep] - low,
                cols=batch.cols[keep],
                tokens=batch.tokens[keep],
                channel_ids=None if batch.channel_ids is None else batch.channel_ids[low:high],
            )
        )
    return halves[0], halves[1]
