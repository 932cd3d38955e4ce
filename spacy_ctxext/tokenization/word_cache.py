"""Wordpieces by whitespace-delimited word, each distinct word tokenized once and reused.

For a tokenizer that splits at every whitespace character before anything else (BERT's
pre-tokenizer, ``Whitespace``, ``WhitespaceSplit``) and whose normalizer, added tokens and
model never reach across such a split, the pieces of a text are the pieces of its
space-separated parts, each tokenized alone, one after another. A doc's *words* are the
runs of its spaCy tokens joined without a trailing space (a new word starts after a token
with SPACY set): its text is its words with one ' ' between them. A word may hold several
tokens ("don't", "U.S.,", a glued "\\n" token): it is still cut only at a ' '.

Most words of a stream of docs were seen before, so the HF tokenizer runs only on the
words the cache lacks (one ``encode_batch`` call); the docs' arrays are gathered from the
cache in numpy. ``wordpieces.tokenize_docs`` uses this for the tokenizers
``exactness.is_exact`` accepts and aligns by character offsets for any other.
"""

import copy
import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, cast

import numpy as np
from spacy.tokens import Doc

from ..arrays import FIBONACCI_HASH, KeyTable, ragged_arange, run_starts
from .exactness import is_exact

__all__ = ["WordCache", "word_cache", "word_cache_off"]

# A cache past either bound is cleared before the next batch: about 45 MB at most (its
# key table, at most half full, is 9 MB of it).
MAX_WORDS = 200_000
MAX_PIECES = 2_000_000
# The words a cache lacks go to the tokenizer joined by ' ', in blocks of about this many
# characters (as wordpieces.CHUNK_CHARS, for the same transient memory).
BLOCK_CHARS = 50_000

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


_UNSET = object()


def word_cache(backend) -> Optional["WordCache"]:
    """The backend's word cache, made on first use; None where words are not exact."""
    cache = getattr(backend, "_ctxext_word_cache", _UNSET)
    if cache is not _UNSET:
        return cast(Optional[WordCache], cache)
    to_str = getattr(backend, "to_str", None)
    cache = WordCache() if to_str is not None and is_exact(json.loads(to_str())) else None
    try:  # kept on the backend: it lives and goes with the tokenizer it describes
        backend._ctxext_word_cache = cache
    except AttributeError:
        pass
    return cache


@contextmanager
def word_cache_off(backend) -> Iterator[None]:
    """Inside the block ``word_cache(backend)`` is None, so ``tokenize_docs`` aligns every
    doc by character offsets: the slower path, for comparing the two."""
    saved = getattr(backend, "_ctxext_word_cache", _UNSET)
    try:
        backend._ctxext_word_cache = None
    except AttributeError:
        raise TypeError(f"{type(backend).__name__} keeps no word cache to turn off.") from None
    try:
        yield
    finally:
        if saved is _UNSET:
            del backend._ctxext_word_cache
        else:
            backend._ctxext_word_cache = saved


@dataclass(frozen=True)
class _Store:
    """Per cached word (entry): its piece ids and, per token, its piece and its cut.

    The arrays are ragged: entry e's ids are ``ids[id_start[e] : id_start[e] +
    n_pieces[e]]``, its tokens' rows start at ``tok_start[e]``. ``tok_piece`` is the
    token's piece within the word (-1: none), ``tok_cut`` the first piece starting at or
    after the token's start (``n_pieces`` for a token after the word's last piece).
    """

    entries: KeyTable  # each word key's entry (grows in place, under the cache's lock)
    ids: np.ndarray
    id_start: np.ndarray
    n_pieces: np.ndarray
    tok_start: np.ndarray
    tok_piece: np.ndarray
    tok_cut: np.ndarray

    @classmethod
    def empty(cls) -> "_Store":
        z = np.zeros(0, np.int64)
        return cls(KeyTable(), np.zeros(0, np.int32), z, z, z, z, z)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The entry of each key, -1 where the cache lacks it."""
        return self.entries.get(keys)

    def add(self, keys: np.ndarray, ids: np.ndarray, n_pieces: np.ndarray, n_tokens, tok):
        """A store with the new words (sorted unique ``keys``, none already here). The
        key table is shared and grows in place: this store replaces the one it came from
        (``WordCache.snapshot`` keeps a copy apart)."""
        self.entries.insert(keys, np.arange(len(keys)) + len(self.n_pieces))
        return _Store(
            entries=self.entries,
            ids=np.concatenate([self.ids, ids]),
            id_start=np.concatenate([self.id_start, run_starts(n_pieces) + len(self.ids)]),
            n_pieces=np.concatenate([self.n_pieces, n_pieces]),
            tok_start=np.concatenate([self.tok_start, run_starts(n_tokens) + len(self.tok_piece)]),
            tok_piece=np.concatenate([self.tok_piece, tok[0]]),
            tok_cut=np.concatenate([self.tok_cut, tok[1]]),
        )


class WordCache:
    """Distinct words' pieces for one tokenizer, bounded; safe to share between threads."""

    def __init__(self, max_words: int = MAX_WORDS, max_pieces: int = MAX_PIECES) -> None:
        self.max_words = max_words
        self.max_pieces = max_pieces
        self.store = _Store.empty()
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.store.entries)

    def clear(self) -> None:
        with self.lock:
            self.store = _Store.empty()

    def snapshot(self) -> "_Store":
        """The cache's words now, kept apart from later batches' (its key table grows in
        place); ``restore`` puts them back."""
        with self.lock:
            return copy.deepcopy(self.store)

    def restore(self, snapshot: "_Store") -> None:
        with self.lock:
            self.store = snapshot

    def doc_arrays(self, backend, docs: Sequence[Doc], attrs: List[np.ndarray]) -> List[Arrays]:
        """Per doc: ids, token_piece, token_starts and sentence_starts (as ``DocPieces``).

        attrs: per doc, ``doc.to_array([IDX, LENGTH, SPACY, SENT_START, ORTH])``.
        """
        table = np.concatenate(attrs) if attrs else np.zeros((0, 5), np.uint64)
        words = _Words.of(table, np.asarray([len(a) for a in attrs], np.int64))
        with self.lock:
            if len(self.store.entries) > self.max_words or len(self.store.ids) > self.max_pieces:
                self.store = _Store.empty()
            entry = self.store.find(words.keys)
            if (entry < 0).any():
                self.store = _add_misses(self.store, backend, docs, table, words, entry < 0)
                entry = self.store.find(words.keys)
            store = self.store
        annotated = [doc.has_annotation("SENT_START") for doc in docs]
        return _assemble(store, entry, words, table, annotated)


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer (uint64 arithmetic wraps, as it should here)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@dataclass(frozen=True)
class _Words:
    """The batch's words: token ranges, tokens' places and 64-bit keys of ORTH ids.

    A key mixes each token's ORTH (spaCy's 64-bit hash of its text) with its place in
    the word, sums and mixes again: two distinct words share one with odds of about
    2^-64 per pair, the odds spaCy itself takes for two strings' ORTH.
    """

    first: np.ndarray  # (words,) first token
    n_tokens: np.ndarray  # (words,)
    of_token: np.ndarray  # (tokens,) word of each token
    place: np.ndarray  # (tokens,) place of each token in its word
    doc_of_token: np.ndarray  # (tokens,)
    keys: np.ndarray  # (words,) uint64

    @classmethod
    def of(cls, table: np.ndarray, doc_lengths: np.ndarray) -> "_Words":
        n = len(table)
        begins = np.zeros(n, dtype=bool)
        begins[1:] = table[:-1, 2] == 1  # after a token with a trailing space
        begins[run_starts(doc_lengths)[doc_lengths > 0]] = True
        first = np.flatnonzero(begins)
        of_token = np.cumsum(begins) - 1
        place = np.arange(n) - first[of_token]
        n_tokens = np.diff(np.append(first, n))
        mixed = _mix(table[:, 4] ^ ((place.astype(np.uint64) + np.uint64(1)) * FIBONACCI_HASH))
        sums = np.add.reduceat(mixed, first) if n else np.zeros(0, np.uint64)
        keys = _mix(sums ^ (n_tokens.astype(np.uint64) * _M2))
        doc_of_token = np.repeat(np.arange(len(doc_lengths)), doc_lengths)
        return cls(first, n_tokens, of_token, place, doc_of_token, keys)


def _add_misses(store: _Store, backend, docs, table, words: _Words, miss: np.ndarray):
    """The store with every missing word, tokenized in one ``encode_batch`` call."""
    keys, where = np.unique(words.keys[miss], return_index=True)
    reps = np.flatnonzero(miss)[where]  # one occurrence of each missing word
    n_tokens = words.n_tokens[reps]
    tokens = ragged_arange(words.first[reps], n_tokens)
    # A word's tokens join without spaces, so its text is their ORTH strings joined.
    strings = [docs[d].vocab.strings for d in range(len(docs))]
    orth = table[tokens, 4].tolist()
    texts = [strings[d][o] for d, o in zip(words.doc_of_token[tokens].tolist(), orth)]
    bounds = np.append(run_starts(n_tokens), len(tokens)).tolist()
    word_texts = ["".join(texts[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    lengths = table[tokens, 1].astype(np.int64)
    ids, n_pieces, tok = _tokenize_words(backend, word_texts, n_tokens, lengths)
    return store.add(keys, ids, n_pieces, n_tokens, tok)


def _tokenize_words(backend, texts: List[str], n_tokens: np.ndarray, lengths: np.ndarray):
    """Pieces of the words (one ``encode_batch`` call on blocks of the words joined by
    ' ', which is exact as tokenizing each alone) and each token's piece and cut."""
    word_start = run_starts(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)
    block = word_start // BLOCK_CHARS
    first = np.flatnonzero(np.diff(block, prepend=-1)).tolist() + [len(texts)]
    blocks = [" ".join(texts[a:b]) for a, b in zip(first[:-1], first[1:])]
    encodings = backend.encode_batch(blocks, add_special_tokens=False)
    shifts = word_start[first[:-1]]
    ids = np.concatenate([np.asarray(e.ids, np.int32) for e in encodings] + [np.zeros(0, np.int32)])
    spans = [np.asarray(e.offsets, np.int64).reshape(-1, 2) + s for e, s in zip(encodings, shifts)]
    span = np.concatenate(spans + [np.zeros((0, 2), np.int64)])
    del encodings
    word_piece = np.searchsorted(span[:, 0], word_start, side="left")
    n_pieces = np.diff(np.append(word_piece, len(ids)))
    # Each token's characters in the joined text, as wordpieces.tokenize_docs aligns them.
    token_word = np.repeat(np.arange(len(texts)), n_tokens)
    before = run_starts(lengths)
    token_start = word_start[token_word] + before - before[run_starts(n_tokens)][token_word]
    piece = np.searchsorted(span[:, 1], token_start, side="right")
    piece_start = np.append(span[:, 0], np.iinfo(np.int64).max)  # none past the last
    has_piece = piece_start[piece] < token_start + lengths
    base = word_piece[token_word]
    cut = np.searchsorted(span[:, 0], token_start, side="left") - base
    return ids, n_pieces, (np.where(has_piece, piece - base, -1), cut)


def _assemble(store: _Store, entry: np.ndarray, words: _Words, table, annotated) -> List[Arrays]:
    """Each doc's arrays, gathered from the cache entries of its words."""
    n_pieces = store.n_pieces[entry]
    ids = store.ids[ragged_arange(store.id_start[entry], n_pieces)]
    word_base = run_starts(n_pieces)  # in the batch's pieces
    doc_lengths = np.bincount(words.doc_of_token, minlength=len(annotated))
    doc_words = np.searchsorted(words.first, run_starts(doc_lengths))
    doc_base = np.append(word_base, len(ids))[doc_words]
    doc_pieces = np.diff(np.append(doc_base, len(ids)))
    # Each token's piece offsets in its doc's pieces.
    base = (word_base - doc_base[words.doc_of_token[words.first]])[words.of_token]
    row = store.tok_start[entry][words.of_token] + words.place
    local = store.tok_piece[row]
    token_piece = np.where(local >= 0, local + base, -1)
    cut = store.tok_cut[row] + base
    # As the offset path: no cuts in a doc without pieces; cuts are sorted in a doc.
    doc_of = words.doc_of_token
    kept = doc_pieces[doc_of] > 0
    token_cuts = _distinct(cut, doc_of, kept)
    sentence_cuts = _distinct(cut, doc_of, kept & (table[:, 3] == 1))
    split = np.cumsum(doc_lengths)[:-1]
    out = []
    for i, (doc_ids, pieces, starts, sentences) in enumerate(
        zip(
            np.split(ids, np.cumsum(doc_pieces)[:-1]),
            np.split(token_piece, split),
            _by_doc(token_cuts, len(annotated)),
            _by_doc(sentence_cuts, len(annotated)),
        )
    ):
        out.append((doc_ids, pieces, starts, sentences if annotated[i] else starts[:1]))
    return out


def _distinct(cut: np.ndarray, doc_of: np.ndarray, selected: np.ndarray):
    """The distinct cuts of the selected tokens, with their doc (cuts sorted per doc)."""
    cut, doc_of = cut[selected], doc_of[selected]
    new = np.ones(len(cut), dtype=bool)
    new[1:] = (cut[1:] != cut[:-1]) | (doc_of[1:] != doc_of[:-1])
    return cut[new], doc_of[new]


def _by_doc(distinct: Tuple[np.ndarray, np.ndarray], n_docs: int) -> List[np.ndarray]:
    cut, doc_of = distinct
    return np.split(cut, np.cumsum(np.bincount(doc_of, minlength=n_docs))[:-1])
