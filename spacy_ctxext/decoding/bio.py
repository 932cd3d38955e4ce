"""The BIO tag scheme in one place: tag names, their grammar, and conversions.

``ctx_ner`` predicts one BIO tag per token. Every module that reads or writes tags
(the converter, the loss, the decoder, the evaluation) goes through these functions,
so the scheme has one definition. spaCy's IOB utilities (``spacy.training.iob_to_biluo``,
``biluo_to_iob``) convert lists of tag strings; what they do not do is here: tag ids as
numpy arrays, the grammar of valid transitions, and entity bounds of many sequences at
once, vectorised.
"""

from functools import lru_cache
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from spacy.training import biluo_to_iob

__all__ = [
    "Span",
    "bio_tag_names",
    "parse_tag",
    "tag_kinds",
    "transition_rules",
    "tags_to_spans",
    "entity_bounds",
    "spans_to_tags",
    "biluo_to_bio",
]

Span = Tuple[int, int, str]
"""``(start, end, label)`` in tokens, ``end`` exclusive."""


def bio_tag_names(labels: Sequence[str]) -> List[str]:
    """``["O", "B-L1", "I-L1", "B-L2", ...]`` in the order of ``labels``."""
    names = ["O"]
    for label in labels:
        names += ["B-" + label, "I-" + label]
    return names


def parse_tag(tag: str) -> Optional[Tuple[str, str]]:
    """``("B", label)`` or ``("I", label)`` for a BIO tag, None for ``"O"``.

    Raises ValueError for anything else (the caller adds where the tag came from).
    """
    if tag == "O":
        return None
    prefix, sep, label = tag.partition("-")
    if sep and label and prefix in ("B", "I"):
        return prefix, label
    raise ValueError(f"unknown NER tag {tag!r} (expected O, B-TYPE or I-TYPE)")


def tag_kinds(tag_names: Sequence[str]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tag: is it a B tag, is it an I tag, and its entity label ("" for O).

    Read-only arrays, parsed once per tag set: the decoder asks for every batch.
    """
    return _tag_kinds(tuple(tag_names))


@lru_cache(maxsize=64)
def _tag_kinds(tag_names: Tuple[str, ...]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    for name in tag_names:
        parse_tag(name)
    is_begin = np.array([name.startswith("B-") for name in tag_names], dtype=bool)
    is_inside = np.array([name.startswith("I-") for name in tag_names], dtype=bool)
    labels = np.array([name[2:] for name in tag_names], dtype=object)
    return _read_only(is_begin), _read_only(is_inside), _read_only(labels)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every caller of the cache
    return array


def transition_rules(tag_names: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """``(allowed[prev, next], start_allowed)``: an ``I-X`` only continues a ``B-X``/``I-X``."""
    is_begin, is_inside, labels = tag_kinds(tag_names)
    continues = (is_begin | is_inside)[:, None] & (labels[:, None] == labels[None, :])
    allowed = ~is_inside[None, :] | continues
    return allowed, ~is_inside


def tags_to_spans(tag_ids: np.ndarray, tag_names: Sequence[str]) -> List[Span]:
    """``(start, end, label)`` of each entity of a valid tag sequence, ``end`` exclusive."""
    tag_ids = np.asarray(tag_ids, dtype=np.int64)
    starts, ends = entity_bounds(tag_ids, tag_names)
    labels = tag_kinds(tag_names)[2]
    return list(zip(starts.tolist(), ends.tolist(), labels[tag_ids[starts]].tolist()))


def entity_bounds(
    tag_ids: np.ndarray, tag_names: Sequence[str], seq_starts: Union[np.ndarray, Sequence[int]] = ()
) -> Tuple[np.ndarray, np.ndarray]:
    """First token and end (exclusive) of each entity, in order, of valid tag sequences
    laid end to end, a sequence beginning at each of ``seq_starts`` (and at 0).

    An entity's label is that of its first tag. An entity ends at a sequence's end,
    so the spans are those each sequence would give alone.
    """
    is_begin, is_inside, _ = tag_kinds(tag_names)
    tag_ids = np.asarray(tag_ids, dtype=np.int64)
    starts = np.flatnonzero(is_begin[tag_ids])
    # In a valid sequence only I tags of the same entity follow a B, so each entity
    # ends at the first non-I tag after its B, or at the end of its sequence.
    stopping = ~is_inside[tag_ids]
    stopping[np.asarray(seq_starts, dtype=np.int64)] = True
    stops = np.append(np.flatnonzero(stopping), len(tag_ids))
    return starts, stops[np.searchsorted(stops, starts, side="right")]


def spans_to_tags(n_tokens: int, spans: Sequence[Span]) -> List[str]:
    """IOB2 tags of ``n_tokens`` tokens with the given non-overlapping entity spans."""
    tags = ["O"] * n_tokens
    for start, end, label in spans:
        tags[start] = f"B-{label}"
        tags[start + 1 : end] = [f"I-{label}"] * (end - start - 1)
    return tags


def biluo_to_bio(tags: Sequence[Optional[str]]) -> List[Optional[str]]:
    """BIO tags of BILUO ones (``Example.get_aligned_ner``'s), by spaCy's ``biluo_to_iob``;
    a missing tag (None or ``"-"``) becomes None, which the loss skips."""
    return [None if tag == "-" else tag for tag in biluo_to_iob([t or "-" for t in tags])]
