"""The batch's docs' wordpieces end to end (``JoinedPieces``): one array for all docs, so
each step of a batch plan is one numpy call per batch rather than one per doc."""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..tokenization.wordpieces import DocPieces

__all__ = ["JoinedPieces"]


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
