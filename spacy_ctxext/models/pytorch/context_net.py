"""The torch side: a HF encoder, a learned vector for tokens without wordpieces, a tag
head, the document memories and the channels' embedding table as one module, and its
forward over one padded encoder call.

Building a ``ContextNet`` from a HF folder is ``net_loading``, to and from bytes
``net_serialization``; what goes into each padded row is ``planning``, running a whole
plan ``models.plan_runner``, and the tokenizer and channel objects are held beside the
net by ``models.encoder_shim``.
"""

from typing import TYPE_CHECKING, Optional

import torch

from ..memory import MemorySettings
from .summary_memory import SummaryMemory
from .type_memory import TypeMemory

if TYPE_CHECKING:  # transformers loads only when an encoder is built
    # From its module: the package's top-level names are typed as its dummy objects.
    from transformers.modeling_utils import PreTrainedModel


class ContextNet(torch.nn.Module):
    """Encoder + learned vector for tokens without wordpieces + optional linear head and
    document memory, and the channels' embedding table where the encoder has channels."""

    def __init__(self, encoder: Optional["PreTrainedModel"] = None) -> None:
        super().__init__()
        self.encoder = encoder
        width = encoder.config.hidden_size if encoder is not None else 0
        # Tokens the tokenizer drops (spaCy whitespace, U+200B, ...) still need a vector.
        self.empty = torch.nn.Parameter(torch.zeros(width))
        self.head: Optional[torch.nn.Linear] = None
        self.memory: Optional[TypeMemory] = None
        self.summary: Optional[SummaryMemory] = None
        self.memory_settings: Optional[MemorySettings] = None
        self.channel_embeddings: Optional[torch.nn.Embedding] = None

    @property
    def is_loaded(self) -> bool:
        return self.encoder is not None

    @property
    def width(self) -> int:
        return int(self.empty.shape[0])

    def set_head(self, n_out: int) -> None:
        if self.head is None or self.head.out_features != n_out:
            self.head = torch.nn.Linear(self.width, n_out).to(self.empty.device)

    def set_memory(self, settings: Optional[MemorySettings]) -> None:
        """A fresh document memory (zero gates) for ``settings``, or none."""
        if settings == self.memory_settings and self.has_memory == bool(settings):
            return
        self.memory_settings = settings
        self.memory = self.summary = None
        if settings is not None and settings.type_memory:
            self.memory = TypeMemory(self.width).to(self.empty.device)
        if settings is not None and settings.summary_slots:
            slots = SummaryMemory(self.width, settings.summary_slots)
            self.summary = slots.to(self.empty.device)

    @property
    def has_memory(self) -> bool:
        return self.memory is not None or self.summary is not None

    def set_channel_rows(self, n_rows: int) -> None:
        """A zero table of ``n_rows`` channel embeddings; row 0 (specials, padding) stays 0."""
        table = torch.nn.Embedding(n_rows, self.width, padding_idx=0)
        torch.nn.init.zeros_(table.weight)
        self.channel_embeddings = table.to(self.empty.device)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        use_head: bool,
        channel_ids: Optional[torch.Tensor] = None,
        replacement: Optional[torch.nn.Module] = None,
    ) -> torch.Tensor:
        """Vectors (or tag logits) of the wordpieces at ``(rows, cols)`` of the batch.

        channel_ids: (rows, width, k) rows of ``channel_embeddings`` per wordpiece, summed
        and added to the word embeddings before the first layer (LayoutLM's fusion).
        replacement: runs in place of ``encoder`` (e.g. its int8 copy at inference): it
        takes the encoder's arguments and returns its hidden states first.
        """
        assert self.encoder is not None, "ContextNet.forward needs a loaded encoder"
        encoder: torch.nn.Module = self.encoder if replacement is None else replacement
        if channel_ids is None or self.channel_embeddings is None:
            hidden = encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        else:
            fused = self.encoder.get_input_embeddings()(input_ids)
            # One lookup per column: summing a (rows, width, k, hidden) lookup over k
            # copied it and cost ~10x the lookups (measured 23 ms vs 2 ms for 8 x 512).
            for column in channel_ids.unbind(dim=2):
                fused = fused + self.channel_embeddings(column).to(fused.dtype)
            hidden = encoder(inputs_embeds=fused, attention_mask=attention_mask)[0]
        vectors = hidden[rows, cols].float()
        if not use_head:
            return vectors
        assert self.head is not None, "use_head needs a head: set_head() first"
        return self.head(vectors)

    def empty_output(self, use_head: bool) -> torch.Tensor:
        if not use_head:
            return self.empty
        assert self.head is not None, "use_head needs a head: set_head() first"
        return self.head(self.empty)
