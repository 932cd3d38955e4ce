"""Tokenize whole documents once and align wordpieces to spaCy tokens by character offsets."""

from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

import numpy as np
from spacy.attrs import IDX, LENGTH, SENT_START, SPACY
from spacy.tokens import Doc

# Long texts go to the tokenizer in chunks of about this many characters, at most
# GROUP_CHARS at a time: one call on a whole 1M-word doc (its encoding plus the Python
# lists of ids and offset tuples) raised peak RSS by 760 MB, the pipeline's worst peak.
CHUNK_CHARS = 100_000
GROUP_CHARS = 1_000_000


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


def tokenize_docs(
    backend, docs: Sequence[Doc], chunk_chars: int = CHUNK_CHARS
) -> List[DocPieces]:
    """Tokenize the docs' texts in batched calls and align the pieces to their tokens."""
    texts = [doc.text for doc in docs]  # Doc.text joins all tokens: build it once
    ids: List[List[np.ndarray]] = [[] for _ in docs]
    offsets: List[List[np.ndarray]] = [[] for _ in docs]
    for group in _chunk_groups(docs, texts, chunk_chars):
        chunks = [texts[i][start:end] for i, start, end in group]
        encodings = backend.encode_batch(chunks, add_special_tokens=False)
        for (i, start, _), enc in zip(group, encodings):
            ids[i].append(np.asarray(enc.ids, dtype=np.int64))
            offsets[i].append(np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2) + start)
        del encodings  # free this group's Rust encodings before the next call
    return [_align(doc, np.concatenate(i), np.concatenate(o)) for doc, i, o in
            zip(docs, ids, offsets)]  # fmt: skip


def _chunk_groups(
    docs: Sequence[Doc], texts: List[str], chunk_chars: int
) -> Iterator[List[Tuple[int, int, int]]]:
    """(doc index, start char, end char) chunks, grouped up to GROUP_CHARS characters."""
    group: List[Tuple[int, int, int]] = []
    size = 0
    for i, (doc, text) in enumerate(zip(docs, texts)):
        bounds = _chunk_bounds(doc, len(text), chunk_chars)
        for start, end in zip(bounds[:-1], bounds[1:]):
            if group and size + end - start > GROUP_CHARS:
                yield group
                group, size = [], 0
            group.append((i, int(start), int(end)))
            size += end - start
    if group:
        yield group


def _chunk_bounds(doc: Doc, n_chars: int, chunk_chars: int) -> np.ndarray:
    """Character cuts of about ``chunk_chars`` where a token ends and whitespace follows.

    The whitespace opens the next chunk, as it would in context, so WordPiece, byte-level
    BPE and SentencePiece tokenizers give the same pieces as for the whole text.
    """
    if n_chars <= chunk_chars:
        return np.asarray([0, n_chars])
    attrs = doc.to_array([IDX, LENGTH, SPACY]).astype(np.int64)
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


def _align(doc: Doc, piece_ids: np.ndarray, spans: np.ndarray) -> DocPieces:
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
