"""Plan a batch of docs for the encoder, in numpy: which wordpieces go in which padded row.

``plan_batch`` tokenizes each doc once, cuts it into windows and packs all windows of
the batch by length; each ``EncoderBatch`` is one padded encoder call and says where
its outputs go in the docs' token order. Nothing here touches torch: running a plan
is ``models.plan_runner.run_plan``.
"""

from dataclasses import dataclass, replace
from typing import List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc
from tokenizers import Tokenizer

from ..arrays import ragged_arange
from ..tokenization.wordpieces import tokenize_docs
from .heap import trim_heap
from .joined import JoinedPieces
from .retrieval import RetrievedPassages, passages_room, retrieve_passages
from .sentences import UNSENTENCED_DOCS
from .windows import Windows, pack_by_budget, plan_joined_windows

# Batches of at least this many tokens return the heap memory their tokenization freed
# (a trim walks every malloc arena: not worth it after a short doc's few kilobytes).
TRIM_AFTER_TOKENS = 100_000


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
    token_channels: Optional[np.ndarray] = None,
    retrieved_passages: int = 0,
    passage_pieces: int = 32,
) -> BatchPlan:
    """Tokenize the docs once, cut them into windows, and pack all windows by length.

    trim_after_tokens: batches of at least this many tokens hand the heap memory their
        tokenization freed back to the OS (None: never).
    token_channels: (tokens, k) channel table rows of all the docs' tokens end to end,
        given to each token's pieces.
    retrieved_passages, passage_pieces: each window also reads up to this many passages
        of at most ``passage_pieces`` pieces from elsewhere in its doc, after its own
        pieces, each followed by the suffix specials (``planning.retrieval``); they come
        out of the window's budget.
    """
    prefix, suffix = specials
    n_special = len(prefix) + len(suffix)
    if isolate_sentences:
        UNSENTENCED_DOCS.check(docs)
    joined = JoinedPieces.of(tokenize_docs(backend, docs))
    local = window - n_special - passages_room(retrieved_passages, passage_pieces, len(suffix))
    windows = plan_joined_windows(
        joined.offsets,
        joined.token_starts,
        joined.sentence_starts,
        window=local,
        context=context,
        isolate_sentences=isolate_sentences,
    )
    layout = _layout(joined, windows, n_special, len(prefix))
    if retrieved_passages and len(windows):
        layout = layout.with_passages(docs, retrieved_passages, passage_pieces, len(suffix))
    groups = pack_by_budget(layout.lengths, batch_wordpieces)
    row_of_window, tokens_of_batch = _tokens_by_batch(layout.token_window, groups, len(windows))
    piece_channels = joined.piece_rows(token_channels)  # None without channels
    batches = [
        _encoder_batch(layout, members, tokens, row_of_window, piece_channels, specials, pad_id)
        for members, tokens in zip(groups, tokens_of_batch)
    ]
    doc_lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
    if trim_after_tokens is not None and doc_lengths.sum() >= trim_after_tokens:
        trim_heap()
    return BatchPlan(batches, np.flatnonzero(layout.token_window < 0), doc_lengths)


@dataclass(frozen=True)
class _Layout:
    """Where each window's pieces and each token go, before the windows are packed.

    lengths: each window's padded length (specials and passages included); token_window,
    token_col: each token's window and column in it (-1: no pieces); passages and
    passage_columns: the retrieved passages and where each starts in its window's row.
    """

    joined: JoinedPieces
    windows: Windows
    lengths: np.ndarray
    token_window: np.ndarray
    token_col: np.ndarray
    passages: Optional[RetrievedPassages] = None
    passage_columns: Optional[np.ndarray] = None

    def with_passages(
        self, docs: Sequence[Doc], k: int, passage_pieces: int, n_suffix: int
    ) -> "_Layout":
        """The layout with up to ``k`` passages retrieved for each window (``retrieval``)."""
        joined = self.joined
        passages = retrieve_passages(
            self.windows,
            docs,
            joined.offsets,
            joined.token_piece,
            joined.token_starts,
            k=k,
            passage_pieces=passage_pieces,
        )
        columns, added = passages.layout(self.lengths, n_suffix)
        return replace(
            self, lengths=self.lengths + added, passages=passages, passage_columns=columns
        )


def _layout(joined: JoinedPieces, windows: Windows, n_special: int, n_prefix: int) -> _Layout:
    token_window, token_col = _locate_tokens(joined.token_piece, windows, n_prefix)
    return _Layout(joined, windows, windows.lengths + n_special, token_window, token_col)


def _encoder_batch(layout, members, tokens, row_of_window, piece_channels, specials, pad_id):
    """The padded encoder call of the windows ``members``, whose outputs are ``tokens``."""
    n_pieces = layout.windows.lengths[members]
    gather = _gather(layout.windows.start[members], n_pieces, len(specials[0]))
    separators = (np.zeros(0, dtype=np.int64),) * 2
    if layout.passages is not None:
        gather, separators = _with_passages(
            gather, layout.passages, layout.passage_columns, members, row_of_window
        )
    lengths = layout.lengths[members]
    input_ids, mask = _pad_windows(
        layout.joined.ids, gather, n_pieces, lengths, specials, pad_id, separators
    )
    channel_ids = None
    if piece_channels is not None:
        channel_ids = _place(piece_channels, gather, mask.shape, 0)
    rows, cols = row_of_window[layout.token_window[tokens]], layout.token_col[tokens]
    return EncoderBatch(input_ids, mask, *_int32(rows, cols, tokens), channel_ids)


def _tokens_by_batch(token_window: np.ndarray, groups: List[np.ndarray], n_windows: int):
    """Each window's row in its batch, and each batch's tokens (in token order)."""
    batch_of_window = np.zeros(n_windows, dtype=np.int64)
    row_of_window = np.zeros(n_windows, dtype=np.int64)
    for b, members in enumerate(groups):
        batch_of_window[members] = b
        row_of_window[members] = np.arange(len(members))
    # Group the tokens by batch with one sort instead of one scan of all tokens per batch.
    placed = np.flatnonzero(token_window >= 0)
    placed = placed[np.argsort(batch_of_window[token_window[placed]], kind="stable")]
    bounds = np.searchsorted(batch_of_window[token_window[placed]], np.arange(len(groups) + 1))
    return row_of_window, [placed[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _locate_tokens(token_piece: np.ndarray, windows: Windows, n_prefix: int):
    """Each token's window and column in it; -1 for a token without pieces."""
    token_window = np.full(len(token_piece), -1, dtype=np.int64)
    token_col = np.full(len(token_piece), -1, dtype=np.int64)
    has = np.flatnonzero(token_piece >= 0)
    token_window[has] = windows.locate(token_piece[has])
    token_col[has] = token_piece[has] - windows.start[token_window[has]] + n_prefix
    return token_window, token_col


def _gather(starts: np.ndarray, n_pieces: np.ndarray, columns, rows=None):
    """Where runs of joined pieces go in a padded batch: run i, ``n_pieces[i]`` pieces from
    ``starts[i]``, fills row ``rows[i]`` (default: row i) from column ``columns`` (one for
    all runs, or one per run). Returns rows, columns and the pieces' index in the joined
    pieces; shared by the ids and the channel rows of one batch."""
    source = ragged_arange(starts, n_pieces)
    rows = np.arange(len(starts)) if rows is None else rows
    row = np.repeat(rows, n_pieces)
    first = np.repeat(np.broadcast_to(columns, starts.shape), n_pieces)
    return row, first + source - np.repeat(starts, n_pieces), source


def _with_passages(gather, retrieved: RetrievedPassages, passage_columns, members, row_of_window):
    """A batch's gather with its windows' retrieved passages added, and where the
    separators after the passages go (rows, first columns)."""
    picked = np.flatnonzero(np.isin(retrieved.window, members))
    starts, columns = retrieved.start[picked], passage_columns[picked]
    lengths = retrieved.end[picked] - starts
    rows = row_of_window[retrieved.window[picked]]
    passages = _gather(starts, lengths, columns, rows)
    gathered = tuple(np.concatenate([a, b]) for a, b in zip(gather, passages))
    return gathered, (rows, columns + lengths)


def _place(source: np.ndarray, gather, shape: Tuple[int, int], fill: int) -> np.ndarray:
    """(rows, width, ...) int32: the gathered rows of ``source``, ``fill`` elsewhere."""
    row, col, at = gather
    out = np.full(shape + source.shape[1:], fill, dtype=np.int32)
    out[row, col] = source[at]
    return out


def _pad_windows(ids, gather, n_pieces, lengths, specials, pad_id, separators):
    """(rows, width) int32 ids of ``[prefix, window's pieces, suffix]`` (then any retrieved
    passages, the suffix after each: ``separators`` holds their rows and first columns),
    padded to the longest row's ``lengths``, and the mask."""
    prefix, suffix = specials
    width = int(lengths.max())
    input_ids = _place(ids, gather, (len(n_pieces), width), pad_id)
    input_ids[:, : len(prefix)] = prefix
    rows = np.concatenate([np.arange(len(n_pieces)), separators[0]])
    columns = np.concatenate([len(prefix) + n_pieces, separators[1]])
    for i, special in enumerate(suffix):
        input_ids[rows, columns + i] = special
    mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
    return input_ids, mask


def _int32(
    rows: np.ndarray, cols: np.ndarray, tokens: np.ndarray
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plan holds a million-word doc's batches until they run: half size, widened per call."""
    return rows.astype(np.int32), cols.astype(np.int32), tokens.astype(np.int32)


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
