"""A compressed memory of each whole document that every token reads before the head.

Windows see a few hundred wordpieces; a name's other mentions may be pages away. The
type memory keeps one slot per normalised word form of a doc, the mean of the token
vectors of all its occurrences, and each token reads its own type's slot: a gate adds
``W_read(slot)`` to the token vector. The gate starts at zero, so a fresh model is
exactly the model without memory. Summary slots (``summary_memory``) are the other kind:
a few learned queries pool the whole doc, and every token reads all of its doc's slots.

Written in one pass and linear in tokens: slots are sums accumulated batch by batch
(``write``), then read once all batches of the docs have run (``read``). The head is
linear, so reading can be done on the logits: ``head(v + g * W s) = head(v) +
head_W (g * W s)``, and no token vector has to outlive its batch. Docs never read each
other's slots: a slot's key is (doc, word form).
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from spacy.attrs import LOWER
from spacy.tokens import Doc
from spacy.util import registry

from .pytorch.summary_memory import GATE_SCALE, SummaryMemory, SummaryWriter


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
                "summary_slots above 0 (DocumentMemory.v2), or drop the [model.memory] "
                "block to train without one."
            )
        if self.min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {self.min_count}.")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# Settings blocks, not models, so @misc as spaCy has them; @architectures keeps the configs
# and saved pipelines written before resolving.
@registry.misc("spacy-ctxext.DocumentMemory.v1")
@registry.architectures("spacy-ctxext.DocumentMemory.v1")
def configure_document_memory(type_memory: bool = True, min_count: int = 2) -> MemorySettings:
    """A document memory for ``spacy-ctxext.TokenClassifier.v2``; its weights live in
    the encoder's torch module and are saved with it."""
    return MemorySettings(type_memory=type_memory, min_count=min_count)


@registry.misc("spacy-ctxext.DocumentMemory.v2")
@registry.architectures("spacy-ctxext.DocumentMemory.v2")
def configure_document_memory_v2(
    type_memory: bool = True, min_count: int = 2, summary_slots: int = 0
) -> MemorySettings:
    """v1 with summary slots: ``summary_slots`` learned queries pool each whole doc and
    every token reads its doc's slots (``summary_memory``); either kind may be off."""
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


class TypeMemory(torch.nn.Module):
    """The learned part: what a token reads from its slot, and the gate."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.read_proj = torch.nn.Linear(width, width, bias=False)
        # Zero: a fresh memory adds nothing, so the model starts as the one without it.
        self.gate = torch.nn.Parameter(torch.zeros(width))

    def slot_logits(
        self, sums: torch.Tensor, counts: torch.Tensor, head: torch.nn.Linear
    ) -> torch.Tensor:
        """Per slot, what reading it adds to the logits of its tokens (no head bias)."""
        means = sums / counts.clamp(min=1).unsqueeze(1)
        gate = GATE_SCALE * self.gate
        return torch.nn.functional.linear(gate * self.read_proj(means), head.weight)


class TypeWriter:
    """The type slots' sums, written batch by batch; read once all batches have run."""

    def __init__(self, slots: np.ndarray, memory: TypeMemory, device: torch.device) -> None:
        self.slots = torch.from_numpy(slots).to(device)
        self.memory = memory
        n_slots = int(slots.max()) + 1 if len(slots) else 0
        self.sums = torch.zeros((n_slots, memory.read_proj.in_features), device=device)
        self.counts = torch.zeros(n_slots, device=device)

    def write(self, vectors: torch.Tensor, tokens: torch.Tensor) -> None:
        slots = self.slots[tokens]
        keep = slots >= 0
        if bool(keep.any()):
            # In place (a copy per batch would make a long doc quadratic); autograd still
            # records it, so the slot means train the encoder too.
            self.sums.index_add_(0, slots[keep], vectors[keep].float())
            self.counts.index_add_(0, slots[keep], torch.ones_like(slots[keep], dtype=torch.float))

    def read(self, head: torch.nn.Linear) -> torch.Tensor:
        """(tokens, labels): each token's slot read (zeros for tokens without a slot)."""
        extra = torch.zeros((len(self.slots), head.out_features), device=self.sums.device)
        if len(self.counts):
            added = self.memory.slot_logits(self.sums, self.counts, head)
            has_slot = self.slots >= 0
            extra[has_slot] = added[self.slots[has_slot]]
        return extra


class MemoryWriter:
    """One forward pass's document memory: each batch's vectors are written to it and
    turned into logits; the tokens read the memory once all batches have run."""

    def __init__(
        self,
        index: TokenIndex,
        head: torch.nn.Linear,
        device: torch.device,
        memory: Optional[TypeMemory] = None,
        summary: Optional[SummaryMemory] = None,
    ) -> None:
        self.head = head
        self.parts: List[Any] = []
        if memory is not None:
            assert index.slots is not None, "a type memory needs token_index's slots"
            self.parts.append(TypeWriter(index.slots, memory, device))
        if summary is not None:
            self.parts.append(SummaryWriter(index.doc_ids, summary, device))

    def write(self, vectors: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Write the vectors of ``tokens`` (indices into the docs' tokens); returns their
        logits without memory (the head's), for ``read`` to complete."""
        for part in self.parts:
            part.write(vectors, tokens)
        return self.head(vectors)

    def read(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits with what each token reads from its doc's memory added."""
        for part in self.parts:
            logits = logits + part.read(self.head)
        return logits


def memory_settings(value: Optional[Dict[str, Any]]) -> Optional[MemorySettings]:
    """The settings saved in a model's attrs or a net's bytes (None: no memory)."""
    return None if value is None else MemorySettings(**value)


__all__: List[str] = [
    "MemorySettings",
    "MemoryWriter",
    "TokenIndex",
    "TypeMemory",
    "TypeWriter",
    "configure_document_memory",
    "configure_document_memory_v2",
    "memory_settings",
    "token_index",
    "token_slots",
]
