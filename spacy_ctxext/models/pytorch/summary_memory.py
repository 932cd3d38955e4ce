"""Summary slots: a few learned queries pool each whole document; every token reads them.

The type memory (``type_memory``) links a name's mentions; summary slots compress the rest of
the document (its topic, genre, who is around) into ``n_slots`` vectors, Perceiver-style:
slot ``k`` of a doc is the softmax-weighted mean of the doc's token vectors under query
``k``. Each token then attends over its own doc's slots, and a zero-initialised gate adds
what it reads, so a fresh model is the model without slots.

One pass and linear in tokens: the pooling softmax runs over a whole doc whose windows
arrive batch by batch, so each batch's scores are merged into running per-doc maxima,
normalisers and weighted sums (the streaming softmax of FlashAttention), all with
gradient. What a token keeps until the end is its read query (``key_width`` numbers),
not its vector; reading is done on the logits, as the type memory's.
"""

from typing import List

import numpy as np
import torch

# Finite, so that exp(FLOOR - FLOOR) is 1 for a doc no batch has reached yet, not NaN.
FLOOR = -1e30


# Both memory kinds' gates: Adam moves a parameter by about the learning rate per step,
# whatever its gradient, so a gate used as it is could reach only ~0.1 in 300 steps at
# 3e-4 (measured: 0.018, and the memory changed 0.02% of the predicted tags). Scaled, it
# can open fully.
GATE_SCALE = 32.0


class SummaryMemory(torch.nn.Module):
    """The learned part: pooling queries, what a slot holds, how tokens read it, the gate."""

    def __init__(self, width: int, n_slots: int, key_width: int = 32) -> None:
        super().__init__()
        self.queries = torch.nn.Parameter(torch.randn(n_slots, key_width))
        self.pool_key = torch.nn.Linear(width, key_width, bias=False)
        self.value = torch.nn.Linear(width, width, bias=False)
        self.read_query = torch.nn.Linear(width, key_width, bias=False)
        self.slot_key = torch.nn.Linear(width, key_width, bias=False)
        self.gate = torch.nn.Parameter(torch.zeros(width))

    @property
    def n_slots(self) -> int:
        return int(self.queries.shape[0])

    @property
    def key_width(self) -> int:
        return int(self.queries.shape[1])

    def pool_scores(self, vectors: torch.Tensor) -> torch.Tensor:
        """(tokens, slots): how much each token weighs in each slot of its doc."""
        return self.pool_key(vectors) @ self.queries.T / self.key_width**0.5

    def slot_logits(self, slots: torch.Tensor, head: torch.nn.Linear) -> torch.Tensor:
        """(docs, slots, labels): what reading each slot adds to the logits (no bias)."""
        gate = GATE_SCALE * self.gate
        return torch.nn.functional.linear(gate * slots, head.weight)


class SummaryWriter:
    """One forward pass's summary slots, written batch by batch and read at the end.

    doc_ids: per token of the docs laid end to end, its doc's index (sorted: each doc's
    tokens are one run).
    """

    def __init__(self, doc_ids: np.ndarray, summary: SummaryMemory, device: torch.device) -> None:
        self.summary = summary
        self.doc_ids = torch.from_numpy(doc_ids).to(device=device, dtype=torch.long)
        self.doc_sizes = np.bincount(doc_ids).tolist() if len(doc_ids) else []
        shape = (len(self.doc_sizes), summary.n_slots)
        self.max = torch.full(shape, FLOOR, device=device)  # a stabiliser: no gradient
        self.norm = torch.zeros(shape, device=device)
        self.sums = torch.zeros((*shape, summary.value.out_features), device=device)
        self.queries = torch.zeros((len(doc_ids), summary.key_width), device=device)

    def write(self, vectors: torch.Tensor, tokens: torch.Tensor) -> None:
        """Pool the vectors of ``tokens`` (indices into the docs' tokens) into their docs'
        slots and keep their read queries."""
        docs = self.doc_ids[tokens]
        scores = self.summary.pool_scores(vectors)
        index = docs.unsqueeze(1).expand_as(scores)
        batch_max = torch.full_like(self.max, FLOOR).scatter_reduce(
            0, index, scores.detach(), "amax"
        )
        new_max = torch.maximum(self.max, batch_max)
        keep = torch.exp(self.max - new_max)  # rescales what earlier batches summed
        weights = torch.exp(scores - new_max[docs])
        # (docs, tokens) one-hot, so that one matmul sums each doc's weighted values.
        members = torch.nn.functional.one_hot(docs, len(self.doc_sizes)).T.float()
        pooled = (members.unsqueeze(2) * weights.unsqueeze(0)).transpose(1, 2)
        self.norm = self.norm * keep + members @ weights
        self.sums = self.sums * keep.unsqueeze(2) + pooled @ self.summary.value(vectors)
        self.max = new_max
        # In place, as the type slots' sums: a copy per batch would be quadratic in tokens.
        self.queries.index_copy_(0, tokens, self.summary.read_query(vectors))

    def read(self, head: torch.nn.Linear) -> torch.Tensor:
        """(tokens, labels): what each token reads from its doc's slots, as logits."""
        slots = self.sums / self.norm.clamp(min=1e-30).unsqueeze(2)
        added = self.summary.slot_logits(slots, head)
        keys = self.summary.slot_key(slots)
        reads: List[torch.Tensor] = []
        # One matmul per doc (not per token): a token attends to its own doc's slots only.
        for doc, queries in enumerate(self.queries.split(self.doc_sizes)):
            attention = torch.softmax(queries @ keys[doc].T / self.summary.key_width**0.5, 1)
            reads.append(attention @ added[doc])
        return torch.cat(reads) if reads else added.new_zeros((0, head.out_features))


__all__ = ["SummaryMemory", "SummaryWriter"]
