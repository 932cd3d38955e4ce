"""Tokenize whole documents once and align wordpieces to spaCy tokens.

Two paths give the same ``DocPieces``: tokenizers that split at whitespace first (BERT's
WordPiece) reuse the pieces of words seen before (``word_cache``); any other tokenizer
runs on the texts and its pieces are aligned to the tokens by character offsets.
"""

from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

import numpy as np
from spacy.attrs import IDX, LENGTH, ORTH, SENT_START, SPACY
from spacy.tokens import Doc

from .word_cache import word_cache

__all__ = ["DocPieces", "load_backend", "special_tokens", "tokenize_by_offsets", "tokenize_docs"]

# Long texts go to the tokenizer in chunks of about CHUNK_CHARS characters, at most
# GROUP_CHARS per call. Each call's pieces become Python lists of ids and of offset
# tuples (about 150 bytes a piece) before numpy arrays: small groups keep that transient
# small. Measured on a 1M-word doc: one call on the whole text raised peak RSS by
# 760 MB; 100k/1M-character chunks/groups by 227 MB; 50k/200k, each chunk aligned as it
# arrives, by 112 MB (the same speed).
CHUNK_CHARS = 50_000
GROUP_CHARS = 200_000


@dataclass(frozen=True)
class DocPieces:
    """The wordpieces of one document and their alignment to its spaCy tokens.

    ids: (W,) int32 wordpiece ids, without special tokens.
    token_piece: (N,) the wordpiece that represents each token, or -1 for tokens
        the tokenizer turns into nothing (whitespace, U+200B, control characters).
    token_starts: sorted wordpiece offsets where a token starts (allowed cuts).
    sentence_starts: sorted wordpiece offsets where a sentence starts (preferred cuts).
    """

    ids: np.ndarray
    token_piece: np.ndarray
    token_starts: np.ndarray
    sentence_starts: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def load_backend(tokenizer):
    """A copy of the fast tokenizer's Rust backend without truncation or padding.

    Documents are tokenized whole, far beyond ``model_max_length``: going to the
    backend skips the per-call length warning and any truncation settings.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast (Rust) tokenizer. spacy-ctxext aligns "
            "wordpieces by character offsets and needs one: save the encoder with "
            "`AutoTokenizer.from_pretrained(name, use_fast=True).save_pretrained(folder)`."
        )
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def special_tokens(backend) -> Tuple[List[int], List[int]]:
    """The ids the tokenizer puts before and after one sequence (e.g. [CLS] … [SEP]).

    Read from the Rust backend (no padding or truncation, see ``load_backend``): its
    post-processor adds them for every fast tokenizer, whereas
    ``build_inputs_with_special_tokens`` returns the ids unchanged for generic fast
    tokenizers (e.g. ModernBERT's) that have no Python subclass.
    """
    encoding = backend.encode("a", add_special_tokens=True)
    content = [i for i, special in enumerate(encoding.special_tokens_mask) if not special]
    return list(encoding.ids[: content[0]]), list(encoding.ids[content[-1] + 1 :])


def tokenize_docs(backend, docs: Sequence[Doc], chunk_chars: int = CHUNK_CHARS) -> List[DocPieces]:
    """The docs' wordpieces and their alignment, from the backend's word cache where its
    tokenizer allows one (``exactness.is_exact``), else by ``tokenize_by_offsets``."""
    cache = word_cache(backend) if docs else None
    if cache is None:
        return tokenize_by_offsets(backend, docs, chunk_chars)
    attrs = [doc.to_array([IDX, LENGTH, SPACY, SENT_START, ORTH]) for doc in docs]
    pieces = [DocPieces(*arrays) for arrays in cache.doc_arrays(backend, docs, attrs)]
    for i in _chunk_dependent(pieces, attrs, chunk_chars):
        pieces[i] = tokenize_by_offsets(backend, [docs[i]], chunk_chars)[0]
    return pieces


def _chunk_dependent(pieces: List[DocPieces], attrs: List[np.ndarray], chunk_chars: int):
    """Docs whose cuts the offset path would give otherwise: it makes no cuts in a chunk
    without pieces (over ``chunk_chars`` characters of whitespace or control characters),
    where the word cache cuts before the next piece. Such docs take the offset path."""
    for i, (doc_pieces, doc_attrs) in enumerate(zip(pieces, attrs)):
        if not len(doc_attrs) or not len(doc_pieces):
            continue
        n_chars = int(doc_attrs[-1, 0] + doc_attrs[-1, 1] + doc_attrs[-1, 2])
        if n_chars <= chunk_chars:
            continue  # one chunk, and it has pieces
        columns = doc_attrs[:, :3].view(np.int64)
        bounds = _chunk_bounds(columns, n_chars, chunk_chars)
        firsts = np.searchsorted(columns[:, 0], bounds[:-1], side="left")
        with_piece = np.concatenate([[0], np.cumsum(doc_pieces.token_piece >= 0)])
        stops = np.append(firsts[1:], len(doc_attrs))
        if (with_piece[stops] == with_piece[firsts]).any():
            yield i


def tokenize_by_offsets(
    backend, docs: Sequence[Doc], chunk_chars: int = CHUNK_CHARS
) -> List[DocPieces]:
    """Tokenize the docs' texts in batched calls and align the pieces to their tokens.

    Chunks end where a token does, so each chunk is aligned on its own as soon as its
    pieces arrive: only aligned arrays outlive a call, never a whole doc's offsets.
    """
    texts = [doc.text for doc in docs]  # Doc.text joins all tokens: build it once
    attrs = [_token_attrs(doc) for doc in docs]
    parts: List[List[DocPieces]] = [[] for _ in docs]
    for group in _chunk_groups(texts, attrs, chunk_chars):
        chunks = [texts[c.doc][c.start : c.end] for c in group]
        encodings = backend.encode_batch(chunks, add_special_tokens=False)
        for chunk, enc in zip(group, encodings):
            parts[chunk.doc].append(_align_chunk(chunk, attrs[chunk.doc], enc))
        del encodings  # free this group's Rust encodings before the next call
    del attrs  # (tokens x 4) int64: gone before the joins copy the aligned arrays
    annotated = [doc.has_annotation("SENT_START") for doc in docs]
    return [_join(p, a) for p, a in zip(parts, annotated)]


@dataclass(frozen=True)
class Chunk:
    """Characters [start, end) of a doc's text, holding its tokens [first, stop)."""

    doc: int
    start: int
    end: int
    first: int
    stop: int


def _token_attrs(doc: Doc) -> np.ndarray:
    # to_array gives uint64; the int64 view (no copy) turns SENT_START's -1 back into -1.
    return doc.to_array([IDX, LENGTH, SPACY, SENT_START]).view(np.int64).reshape(-1, 4)


def _chunk_groups(
    texts: List[str], attrs: List[np.ndarray], chunk_chars: int
) -> Iterator[List[Chunk]]:
    """The docs' chunks in order, grouped up to GROUP_CHARS characters."""
    group: List[Chunk] = []
    size = 0
    for i, (text, doc_attrs) in enumerate(zip(texts, attrs)):
        bounds = _chunk_bounds(doc_attrs, len(text), chunk_chars)
        tokens = np.searchsorted(doc_attrs[:, 0], bounds, side="left")
        tokens[-1] = len(doc_attrs)
        for start, end, first, stop in zip(bounds[:-1], bounds[1:], tokens[:-1], tokens[1:]):
            if group and size + end - start > GROUP_CHARS:
                yield group
                group, size = [], 0
            group.append(Chunk(i, int(start), int(end), int(first), int(stop)))
            size += end - start
    if group:
        yield group


def _chunk_bounds(attrs: np.ndarray, n_chars: int, chunk_chars: int) -> np.ndarray:
    """Character cuts of about ``chunk_chars`` where a token ends and whitespace follows.

    The whitespace opens the next chunk, as it would in context, so WordPiece, byte-level
    BPE and SentencePiece tokenizers give the same pieces as for the whole text.
    """
    if n_chars <= chunk_chars:
        return np.asarray([0, n_chars])
    cuts = (attrs[:, 0] + attrs[:, 1])[attrs[:, 2] == 1]
    bounds = [0]
    while n_chars - bounds[-1] > chunk_chars:
        # The last cut within chunk_chars of the previous bound, else the first after it.
        last = np.searchsorted(cuts, bounds[-1] + chunk_chars, side="right") - 1
        after = np.searchsorted(cuts, bounds[-1], side="right")
        cut = cuts[last] if last >= after else (cuts[after] if after < len(cuts) else n_chars)
        if cut >= n_chars:
            break
        bounds.append(int(cut))
    return np.asarray(bounds + [n_chars])


def _align_chunk(chunk: Chunk, attrs: np.ndarray, encoding) -> DocPieces:
    """The chunk's pieces and its tokens' alignment, offsets counted from the chunk."""
    piece_ids = np.asarray(encoding.ids, dtype=np.int32)
    spans = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    piece_start, piece_end = spans[:, 0], spans[:, 1]
    token_start = attrs[chunk.first : chunk.stop, 0] - chunk.start
    token_end = token_start + attrs[chunk.first : chunk.stop, 1]
    if len(token_start) == 0 or len(piece_ids) == 0:
        empty = np.zeros((0,), dtype=np.int64)
        return DocPieces(piece_ids, np.full(len(token_start), -1, dtype=np.int64), empty, empty)
    # A token is represented by the piece covering its first character, or else by
    # the first piece that starts inside it; tokens with neither get no piece.
    piece = np.searchsorted(piece_end, token_start, side="right")
    clipped = np.minimum(piece, len(piece_ids) - 1)
    has_piece = (piece < len(piece_ids)) & (piece_start[clipped] < token_end)
    starts = np.searchsorted(piece_start, token_start, side="left")
    sentence = attrs[chunk.first : chunk.stop, 3] == 1
    return DocPieces(
        ids=piece_ids,
        token_piece=np.where(has_piece, piece, -1),
        token_starts=np.unique(starts),
        sentence_starts=np.unique(starts[sentence]),
    )


def _join(parts: List[DocPieces], has_sentences: bool) -> DocPieces:
    """One doc's pieces from its chunks' (every doc has one), counted from the doc start."""
    shifts = np.cumsum([0] + [len(p) for p in parts[:-1]])

    def shifted(field: str) -> np.ndarray:
        return np.concatenate([getattr(p, field) + s for p, s in zip(parts, shifts)])

    token_piece = np.concatenate(
        [np.where(p.token_piece >= 0, p.token_piece + s, -1) for p, s in zip(parts, shifts)]
    )
    token_starts = np.unique(shifted("token_starts"))
    # Without sentence boundaries the doc start is the only sentence start known.
    sentence_starts = np.unique(shifted("sentence_starts")) if has_sentences else token_starts[:1]
    ids = np.concatenate([p.ids for p in parts])
    return DocPieces(ids, token_piece, token_starts, sentence_starts)
