"""Plan a batch of docs for the encoder, in numpy: which wordpieces go in which padded row.

``plan_batch`` tokenizes each doc once, cuts it into windows and packs all windows of
the batch by length; each ``EncoderBatch`` is one padded encoder call and says where
its outputs go in the docs' token order. Nothing here touches torch: running a plan
is ``models.plan_runner.run_plan``.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
from spacy.tokens import Doc
from tokenizers import Tokenizer

from ..arrays import ragged_arange
from ..tokenization.wordpieces import DocPieces, tokenize_docs
from .heap import trim_heap
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
    pieces = tokenize_docs(backend, docs)
    joined = JoinedPieces.of(pieces)
    local = window - n_special - passages_room(retrieved_passages, passage_pieces, len(suffix))
    windows = plan_joined_windows(
        joined.offsets,
        joined.token_starts,
        joined.sentence_starts,
        window=local,
        context=context,
        isolate_sentences=isolate_sentences,
    )
    lengths = windows.lengths + n_special
    retrieved, passage_columns = None, np.zeros(0, dtype=np.int64)
    if retrieved_passages and len(windows):
        retrieved = retrieve_passages(
            windows,
            docs,
            joined.offsets,
            joined.token_piece,
            joined.token_starts,
            k=retrieved_passages,
            passage_pieces=passage_pieces,
        )
        passage_columns, added = retrieved.layout(lengths, len(suffix))
        lengths = lengths + added
    token_window, token_col = _locate_tokens(joined.token_piece, windows, len(prefix))
    groups = pack_by_budget(lengths, batch_wordpieces)
    row_of_window, tokens_of_batch = _tokens_by_batch(token_window, groups, len(lengths))
    piece_channels = joined.piece_rows(token_channels)  # None without channels
    batches = []
    for members, tokens in zip(groups, tokens_of_batch):
        n_pieces = windows.lengths[members]
        gather = _gather(windows.start[members], n_pieces, len(prefix))
        separators = (np.zeros(0, dtype=np.int64),) * 2
        if retrieved is not None:
            gather, separators = _with_passages(
                gather, retrieved, passage_columns, members, row_of_window
            )
        input_ids, mask = _pad_windows(
            joined.ids, gather, n_pieces, lengths[members], specials, pad_id, separators
        )
        channel_ids = None
        if piece_channels is not None:
            channel_ids = _place(piece_channels, gather, mask.shape, 0)
        rows, cols = row_of_window[token_window[tokens]], token_col[tokens]
        batches.append(EncoderBatch(input_ids, mask, *_int32(rows, cols, tokens), channel_ids))
    doc_lengths = np.asarray([len(d) for d in docs], dtype=np.int64)
    if trim_after_tokens is not None and doc_lengths.sum() >= trim_after_tokens:
        trim_heap()
    return BatchPlan(batches, np.flatnonzero(token_window < 0), doc_lengths)


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


@dataclass(frozen=True)
class JoinedPieces:
    """The batch's docs' pieces end to end: one array for all, so each step of the plan
    is one numpy call per batch rather than one per doc.

    offsets: (docs + 1,) where each doc's pieces start; token_piece: (tokens,) each
    token's piece in the joined pieces, -1 for none; token_starts, sentence_starts: the
    docs' (``DocPieces``), in the joined pieces' offsets.
    """

    ids: np.ndarray
    offsets: np.ndarray
    token_piece: np.ndarray
    doc_of_token: np.ndarray
    token_starts: np.ndarray
    sentence_starts: np.ndarray

    @classmethod
    def of(cls, pieces: Sequence[DocPieces]) -> "JoinedPieces":
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces], dtype=np.int64)])
        n_tokens = np.asarray([len(p.token_piece) for p in pieces], dtype=np.int64)
        doc_of_token = np.repeat(np.arange(len(pieces)), n_tokens)
        local = _joined([p.token_piece for p in pieces], np.int64)
        token_piece = np.where(local >= 0, local + offsets[doc_of_token], -1)
        ids = _joined([p.ids for p in pieces], np.int32)
        starts = [_shifted(pieces, offsets, field) for field in ("token_starts", "sentence_starts")]
        return cls(ids, offsets, token_piece, doc_of_token, *starts)

    def piece_rows(self, token_rows: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """(pieces, k) rows for every piece: those of the token it belongs to (from the
        token's first piece to the next token's; a piece two tokens share belongs to the
        first). Pieces before their doc's first token's get row 0."""
        if token_rows is None:
            return None
        rows = np.zeros((len(self.ids), token_rows.shape[1]), dtype=np.int32)
        has_piece = np.flatnonzero(self.token_piece >= 0)
        firsts, where = np.unique(self.token_piece[has_piece], return_index=True)
        if not len(firsts):
            return rows
        owner = np.searchsorted(firsts, np.arange(len(self.ids)), side="right") - 1
        tokens = has_piece[where[np.maximum(owner, 0)]]
        doc_of_piece = np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))
        own = (owner >= 0) & (self.doc_of_token[tokens] == doc_of_piece)
        rows[own] = token_rows[tokens[own]]
        return rows


def _shifted(pieces: Sequence[DocPieces], offsets: np.ndarray, field: str) -> np.ndarray:
    """A field of piece offsets of each doc, in the joined pieces' offsets."""
    arrays = [getattr(p, field) for p in pieces]
    return _joined(arrays, np.int64) + np.repeat(offsets[:-1], [len(a) for a in arrays])


def _joined(arrays: Sequence[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(list(arrays) + [np.zeros(0, dtype)])


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
