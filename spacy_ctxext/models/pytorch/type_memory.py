"""The type memory: one slot per normalised word form of a doc, read by its tokens.

Each slot is the mean of the token vectors of all the form's occurrences in the doc, and
each token reads its own type's slot: a gate adds ``W_read(slot)`` to the token vector.
The gate starts at zero, so a fresh model is exactly the model without memory. Which slot
a token has is decided on the host (``models.memory.token_slots``).
"""

import numpy as np
import torch

from .summary_memory import GATE_SCALE


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
