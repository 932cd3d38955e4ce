"""One forward pass's document memory, of either kind or both, written batch by batch.

Slots are sums accumulated batch by batch (``write``), then read once all batches of the
docs have run (``read``). The head is linear, so reading can be done on the logits:
``head(v + g * W s) = head(v) + head_W (g * W s)``, and no token vector has to outlive its
batch.
"""

from typing import Any, List, Optional

import torch

from ..memory import TokenIndex
from .summary_memory import SummaryMemory, SummaryWriter
from .type_memory import TypeMemory, TypeWriter


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
