"""The document memory's settings and registered blocks, and which slot each token reads.

A compressed memory of each whole document that every token reads before the head.

Windows see a few hundred wordpieces; a name's other mentions may be pages away. The
type memory keeps one slot per normalised word form of a doc, the mean of the token
vectors of all its occurrences, and each token reads its own type's slot: a gate adds
``W_read(slot)`` to the token vector. The gate starts at zero, so a fresh model is
exactly the model without memory. Summary slots (``summary_memory``) are the other kind:
a few learned queries pool the whole doc, and every token reads all of its doc's slots.

Written in one pass and linear in tokens (``pytorch.memory_writer``), by the torch
modules of ``pytorch.type_memory`` and ``pytorch.summary_memory``. Docs never read each
other's slots: a slot's key is (doc, word form), numbered here on the host
(``token_slots``).
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from spacy.attrs import LOWER
from spacy.tokens import Doc
from spacy.util import registry


@dataclass(frozen=True)
class MemorySettings:
    """type_memory: one slot per lower-cased word form of each doc, read by its tokens.
    min_count: forms with fewer occurrences in a doc get no slot (1: every form).
    summary_slots: learned queries that pool each whole doc, read by all its tokens (0: none).
    """

    type_memory: bool = True
    min_count: int = 2
    summary_slots: int = 0

    def __post_init__(self) -> None:
        if self.summary_slots < 0:
            raise ValueError(f"summary_slots must be 0 or more, got {self.summary_slots}.")
        if not self.type_memory and not self.summary_slots:
            raise ValueError(
                "DocumentMemory needs a memory to build: set type_memory = true or "
                "summary_slots above 0, or drop the [model.memory] "
                "block to train without one."
            )
        if self.min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {self.min_count}.")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# A settings block, not a model, so @misc, as spaCy registers its settings blocks.
@registry.misc("spacy-ctxext.DocumentMemory.v1")
def configure_document_memory(
    type_memory: bool = True, min_count: int = 2, summary_slots: int = 0
) -> MemorySettings:
    """A document memory for ``spacy-ctxext.TokenClassifier.v1``: the type memory, and
    ``summary_slots`` learned queries that pool each whole doc and whose slots every token
    of it reads (``summary_memory``); either kind may be off. Its weights live in the
    encoder's torch module and are saved with it."""
    return MemorySettings(type_memory, min_count, summary_slots)


@dataclass(frozen=True)
class TokenIndex:
    """Per token of a batch's docs laid end to end: its type slot (-1: none; None without
    a type memory) and its doc."""

    slots: Optional[np.ndarray]
    doc_ids: np.ndarray


def token_index(docs: Sequence[Doc], settings: MemorySettings) -> TokenIndex:
    lengths = [len(doc) for doc in docs]
    doc_ids = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    slots = token_slots(docs, settings.min_count) if settings.type_memory else None
    return TokenIndex(slots, doc_ids)


def token_slots(docs: Sequence[Doc], min_count: int) -> np.ndarray:
    """Per token of all docs (laid end to end): its memory slot, or -1 for none.

    A slot is a (doc, lower-cased form) pair that occurs at least ``min_count`` times.
    """
    forms = [doc.to_array(LOWER).astype(np.uint64) for doc in docs]
    if not forms or sum(len(f) for f in forms) == 0:
        return np.zeros(0, dtype=np.int64)
    doc_ids = np.repeat(np.arange(len(docs), dtype=np.uint64), [len(f) for f in forms])
    keys = np.stack([doc_ids, np.concatenate(forms)], axis=1)
    _, slots, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    slots = slots.reshape(-1)
    kept = counts >= min_count
    renumber = np.where(kept, np.cumsum(kept) - 1, -1)
    return renumber[slots].astype(np.int64)


def memory_settings(value: Optional[Dict[str, Any]]) -> Optional[MemorySettings]:
    """The settings saved in a model's attrs or a net's bytes (None: no memory)."""
    return None if value is None else MemorySettings(**value)


__all__: List[str] = [
    "MemorySettings",
    "TokenIndex",
    "configure_document_memory",
    "memory_settings",
    "token_index",
    "token_slots",
]
