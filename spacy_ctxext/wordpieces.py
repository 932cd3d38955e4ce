"""Tokenize whole documents once and align wordpieces to spaCy tokens by character offsets."""

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
from spacy.attrs import IDX, LENGTH, SENT_START
from spacy.tokens import Doc


@dataclass(frozen=True)
class DocPieces:
    """The wordpieces of one document and their alignment to its spaCy tokens.

    ids: (W,) wordpiece ids, without special tokens.
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


def tokenize_docs(backend, docs: Sequence[Doc]) -> List[DocPieces]:
    """Tokenize each doc's text in one batched call and align the pieces to its tokens."""
    encodings = backend.encode_batch([doc.text for doc in docs], add_special_tokens=False)
    return [_align(doc, enc.ids, enc.offsets) for doc, enc in zip(docs, encodings)]


def _align(doc: Doc, ids: List[int], offsets: List[tuple]) -> DocPieces:
    piece_ids = np.asarray(ids, dtype=np.int64)
    spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    piece_start, piece_end = spans[:, 0], spans[:, 1]
    if len(doc) == 0 or len(piece_ids) == 0:
        empty = np.zeros((0,), dtype=np.int64)
        return DocPieces(piece_ids, np.full(len(doc), -1, dtype=np.int64), empty, empty)
    attrs = doc.to_array([IDX, LENGTH, SENT_START]).astype(np.int64)
    token_start, token_end = attrs[:, 0], attrs[:, 0] + attrs[:, 1]
    # A token is represented by the piece covering its first character, or else by
    # the first piece that starts inside it; tokens with neither get no piece.
    piece = np.searchsorted(piece_end, token_start, side="right")
    clipped = np.minimum(piece, len(piece_ids) - 1)
    has_piece = (piece < len(piece_ids)) & (piece_start[clipped] < token_end)
    token_piece = np.where(has_piece, piece, -1)
    starts = np.searchsorted(piece_start, token_start, side="left")
    if doc.has_annotation("SENT_START"):
        sentence_starts = starts[attrs[:, 2] == 1]
    else:
        sentence_starts = starts[:1]
    return DocPieces(
        ids=piece_ids,
        token_piece=token_piece,
        token_starts=np.unique(starts),
        sentence_starts=np.unique(sentence_starts),
    )
