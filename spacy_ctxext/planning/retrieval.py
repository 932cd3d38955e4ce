"""Passages retrieved from the whole document for each window: read, never predicted.

A window reads its neighbourhood; a name's first mention is often explained far away
("Holmes" on page one, "Mr. Sherlock Holmes, the detective" on page nine). Each window
may also read up to ``k`` passages from anywhere else in its document that share its
rarer capitalised words, as Amalvy et al. (2023) retrieve sentences sharing a noun.

- Passages are the document's sentences by an internal rule (a token after ``.``, ``!``
  or ``?`` starts one), cut to at most ``passage_pieces`` wordpieces: raw text needs no
  sentence component, and the rule does not depend on what else runs in the pipeline.
- Key terms are alphabetic tokens that are capitalised (title case or all capitals), not
  stop words and not the first of their passage (where every word is capitalised); they
  are compared lower-cased. A term found in more than ``MAX_TERM_PASSAGES`` passages of
  the document says little about any one of them and retrieves nothing.
- A passage's score for a window is the sum of ``log(1 + passages / df)`` over the key
  terms it shares with the window's core; passages that overlap what the window already
  reads, or share nothing, are never chosen. Ties go to the earlier passage.

Everything depends on the document alone, so ``nlp.pipe`` and ``nlp(text)`` give the
same passages; training and inference plan them the same way.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np
from spacy.attrs import IS_ALPHA, IS_STOP, IS_TITLE, IS_UPPER, LOWER
from spacy.tokens import Doc

from ..arrays import ragged_arange
from .sentences import sentence_ends
from .windows import Windows, plan_joined_windows

__all__ = [
    "RetrievedPassages",
    "passages_room",
    "retrieve_passages",
    "token_terms",
]

# Terms in more passages of a document than this retrieve nothing (a book's hero).
MAX_TERM_PASSAGES = 16


@dataclass(frozen=True)
class RetrievedPassages:
    """The passages each window reads, in document order within each window.

    window: (n,) the window of each retrieved passage, sorted; start, end: (n,) its
    wordpiece offsets in the joined pieces.
    """

    window: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.window)

    def layout(self, first_column: np.ndarray, separator: int):
        """Each passage's first column in its window's row, and the pieces each window's
        passages add; a window's passages follow one another from ``first_column[window]``
        in document order, each followed by ``separator`` special tokens."""
        taken = self.end - self.start + separator
        added = np.bincount(self.window, weights=taken, minlength=len(first_column))
        before = np.cumsum(taken) - taken  # taken by earlier passages, all windows
        window_first = np.searchsorted(self.window, self.window, side="left")
        columns = first_column[self.window] + before - before[window_first]
        return columns.astype(np.int64), added.astype(np.int64)


def token_terms(docs: Sequence[Doc]) -> Tuple[np.ndarray, np.ndarray]:
    """Two (tokens,) arrays over all the docs' tokens end to end, from one pass: int64, the
    lower-cased form's hash for a key term, 0 for any other token; and bool, whether a
    token starts a passage by the internal rule (each doc's first token does)."""
    terms, starts = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=bool)]
    for doc in docs:
        if not len(doc):
            continue
        initial = np.concatenate([[True], sentence_ends(doc)[:-1]])
        rows = doc.to_array([LOWER, IS_ALPHA, IS_STOP, IS_TITLE, IS_UPPER]).astype(np.uint64)
        capitalised = (rows[:, 3] | rows[:, 4]).astype(bool)
        key = rows[:, 1].astype(bool) & ~rows[:, 2].astype(bool) & capitalised & ~initial
        terms.append(np.where(key, rows[:, 0].view(np.int64), 0))
        starts.append(initial)
    return np.concatenate(terms), np.concatenate(starts)


def retrieve_passages(
    windows: Windows,
    docs: Sequence[Doc],
    offsets: np.ndarray,
    token_piece: np.ndarray,
    token_starts: np.ndarray,
    *,
    k: int,
    passage_pieces: int,
) -> RetrievedPassages:
    """Up to ``k`` passages of at most ``passage_pieces`` pieces for each window.

    offsets, token_piece, token_starts: the joined pieces of ``docs``
    (``joined.JoinedPieces``).
    """
    terms, starts_passage = token_terms(docs)
    has_piece = token_piece >= 0
    rule_starts = np.unique(token_piece[starts_passage & has_piece])
    passages = plan_joined_windows(
        offsets, token_starts, rule_starts, window=passage_pieces, context=0, isolate_sentences=True
    )
    keyed = np.flatnonzero(has_piece & (terms != 0))
    pieces = token_piece[keyed]
    doc = np.searchsorted(offsets, pieces, side="right") - 1
    # (doc, term) pairs as dense ids: the same word in two docs is two terms.
    _, term = np.unique(np.stack([doc, terms[keyed]], axis=1), axis=0, return_inverse=True)
    term = term.reshape(-1)
    passage = passages.locate(pieces)
    window = windows.locate(pieces)
    in_core = (window >= 0) & (pieces < windows.core_end[np.maximum(window, 0)])
    return _top_passages(
        windows, passages, offsets, term, passage, window[in_core], term[in_core], k
    )


def _top_passages(windows, passages, offsets, term, passage, core_window, core_term, k):
    """Score every (window, passage) pair that shares a usable term; keep each window's
    best ``k`` that it does not already read."""
    empty = np.zeros(0, dtype=np.int64)
    passage_terms = np.unique(np.stack([term, passage], axis=1), axis=0)
    df = np.bincount(passage_terms[:, 0], minlength=int(term.max(initial=-1)) + 1)
    window_terms = np.unique(np.stack([core_term, core_window], axis=1), axis=0)
    window_terms = window_terms[df[window_terms[:, 0]] <= MAX_TERM_PASSAGES]
    if not len(window_terms) or not len(passage_terms):
        return RetrievedPassages(empty, empty, empty)
    # Each window's terms joined with the passages holding them (passage_terms is sorted
    # by term): ragged ranges, at most MAX_TERM_PASSAGES per term.
    first = np.searchsorted(passage_terms[:, 0], window_terms[:, 0], side="left")
    count = df[window_terms[:, 0]]
    at = ragged_arange(first, count)
    pair_window = np.repeat(window_terms[:, 1], count)
    pair_passage = passage_terms[at, 1]
    doc_of_passage = np.searchsorted(offsets, passages.start, side="right") - 1
    n_in_doc = np.bincount(doc_of_passage, minlength=len(offsets) - 1)[doc_of_passage]
    weight = np.log1p(n_in_doc[pair_passage] / np.repeat(count, count))
    reads = (passages.start[pair_passage] < windows.end[pair_window]) & (
        passages.end[pair_passage] > windows.start[pair_window]
    )
    keys = pair_window[~reads] * len(passages) + pair_passage[~reads]
    unique_keys, inverse = np.unique(keys, return_inverse=True)
    score = np.bincount(inverse.reshape(-1), weights=weight[~reads])
    window, passage = unique_keys // len(passages), unique_keys % len(passages)
    order = np.lexsort((passage, -score, window))
    window, passage = window[order], passage[order]
    rank = np.arange(len(window)) - np.searchsorted(window, window, side="left")
    keep = np.lexsort((passage[rank < k], window[rank < k]))
    window, passage = window[rank < k][keep], passage[rank < k][keep]
    return RetrievedPassages(window, passages.start[passage], passages.end[passage])


def passages_room(retrieved_passages: int, passage_pieces: int, n_suffix: int) -> int:
    """Pieces a window keeps for its retrieved passages and their separators."""
    return retrieved_passages * (passage_pieces + n_suffix)
