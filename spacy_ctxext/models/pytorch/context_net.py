"""The torch side: a HF encoder, its tokenizer and a tag head as one module, and the
run of a planned batch through it (with the OOM split at inference).

Building a ``ContextNet`` from a HF folder is ``net_loading``, to and from bytes
``net_serialization``; deciding what goes into each padded row is ``planning``.
"""

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

import numpy as np
import torch
from tokenizers import Tokenizer

from ...channels.base import Channel
from ...planning.batch_plan import BatchPlan, EncoderBatch, split_batch
from ...tokenization.wordpieces import load_backend, special_tokens
from ..memory import MemorySettings, TokenIndex
from .memory_writer import MemoryWriter
from .summary_memory import SummaryMemory
from .type_memory import TypeMemory

if TYPE_CHECKING:  # transformers loads only when an encoder is built
    # From their modules: the package's top-level names are typed as its dummy objects.
    from transformers.modeling_utils import PreTrainedModel

    # The base class: the fast one moved in transformers 5 (tokenization_utils_tokenizers).
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

Specials = Tuple[List[int], List[int]]
"""The special token ids before and after each window (e.g. [CLS] and [SEP])."""


class ContextNet(torch.nn.Module):
    """Encoder + learned vector for tokens without wordpieces + optional linear head,
    and the channels' embedding table where the encoder has channels (``channels``)."""

    def __init__(
        self,
        encoder: Optional["PreTrainedModel"] = None,
        tokenizer: Optional["PreTrainedTokenizerBase"] = None,
        channels: Optional[Dict[str, Channel]] = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        width = encoder.config.hidden_size if encoder is not None else 0
        # Tokens the tokenizer drops (spaCy whitespace, U+200B, ...) still need a vector.
        self.empty = torch.nn.Parameter(torch.zeros(width))
        self.head: Optional[torch.nn.Linear] = None
        self.memory: Optional[TypeMemory] = None
        self.summary: Optional[SummaryMemory] = None
        self.memory_settings: Optional[MemorySettings] = None
        # The configured channel objects (not torch modules) and their shared table.
        self.channels: Dict[str, Channel] = dict(channels or {})
        self.channel_embeddings: Optional[torch.nn.Embedding] = None
        self._backend: Optional[Tokenizer] = None
        self._specials: Optional[Specials] = None
        self.set_inference_encoder(None)

    @property
    def backend(self) -> Tokenizer:
        """The Rust tokenizer without truncation, copied once per loaded net."""
        if self._backend is None:
            self._backend = load_backend(self.tokenizer)
        return self._backend

    @property
    def specials(self) -> Specials:
        """The special token ids before and after each window, read once per loaded net."""
        if self._specials is None:
            self._specials = special_tokens(self.backend)
        return self._specials

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id if self.tokenizer is not None else None
        return int(pad or 0)

    @property
    def inference_encoder(self) -> Optional[torch.nn.Module]:
        """What runs in place of ``encoder`` at inference, or None (see the setter)."""
        return self.__dict__["_inference_encoder"]

    def set_inference_encoder(self, module: Optional[torch.nn.Module]) -> None:
        """Run ``module`` in place of ``encoder`` when not training (None: the encoder).

        It takes the encoder's arguments (``input_ids`` or ``inputs_embeds``, and
        ``attention_mask``) and returns its hidden states first: the int8 copy of
        ``cpu_precision = "int8"`` (``quantization``) or the benchmark's null encoder
        (``--null-encoder``). Not a submodule: never saved, moved to a device or trained.
        """
        self.__dict__["_inference_encoder"] = module

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
    ) -> torch.Tensor:
        """Vectors (or tag logits) of the wordpieces at ``(rows, cols)`` of the batch.

        channel_ids: (rows, width, k) rows of ``channel_embeddings`` per wordpiece, summed
        and added to the word embeddings before the first layer (LayoutLM's fusion).
        """
        assert self.encoder is not None, "ContextNet.forward needs a loaded encoder"
        encoder: torch.nn.Module = self.encoder
        if not self.training and self.inference_encoder is not None:
            encoder = self.inference_encoder
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


def run_plan(
    net: ContextNet,
    plan: BatchPlan,
    *,
    use_head: bool,
    autocast_dtype: Optional[torch.dtype] = None,
    memory_index: Optional[TokenIndex] = None,
) -> torch.Tensor:
    """Encode every batch and return one output row per token, in the docs' token order.

    memory_index: per token, its type slot and doc (``memory.token_index``); with a head
    and a document memory, each batch's vectors are written to the memory and the
    tokens read it once all batches have run.

    Each batch's rows go straight into one output allocated up front: holding every
    batch's output until the end interleaves small live blocks with the freed
    activations, and glibc's heap then grows with the number of batches instead of
    reusing one batch's memory (measured on a 100k-word doc: RSS rose 239 MB, now 140).
    """
    device = net.empty.device
    width = net.width
    if use_head:
        assert net.head is not None, "use_head needs a head: set_head() first"
        width = net.head.out_features
    outputs = torch.zeros((plan.n_tokens, width), device=device)
    writer = None
    if use_head and net.has_memory and memory_index is not None:
        assert net.head is not None  # checked above with use_head
        writer = MemoryWriter(memory_index, net.head, device, net.memory, net.summary)
    for batch in plan.batches:
        out, tokens = _run_batch(net, batch, use_head and writer is None, autocast_dtype)
        index = as_long(tokens, device)
        outputs[index] = out if writer is None else writer.write(out, index)
    if len(plan.empty_tokens):
        empty = as_long(plan.empty_tokens, device)
        outputs[empty] = net.empty_output(use_head).expand(len(empty), -1)
    return outputs if writer is None else writer.read(outputs)


def as_long(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """An index or id array as the int64 tensor torch and HF encoders expect."""
    return torch.from_numpy(array).to(device=device, dtype=torch.long)


def _encode_batch(
    net: ContextNet, batch: EncoderBatch, use_head: bool, autocast_dtype: Optional[torch.dtype]
) -> torch.Tensor:
    device = net.empty.device
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        out = net(
            as_long(batch.input_ids, device),
            as_long(batch.attention_mask, device),
            as_long(batch.rows, device),
            as_long(batch.cols, device),
            use_head,
            None if batch.channel_ids is None else as_long(batch.channel_ids, device),
        )
    return out.float()


def _run_batch(
    net: ContextNet, batch: EncoderBatch, use_head: bool, autocast_dtype: Optional[torch.dtype]
) -> Tuple[torch.Tensor, np.ndarray]:
    """One batch's outputs and their tokens; at inference, halve the batch on CUDA OOM.

    Splitting only changes how many windows share an encoder call, not what a window
    reads, so the outputs are those of the whole batch. In training the activations
    of the batches already run are held for backprop: splitting would not free them.
    """
    try:
        return _encode_batch(net, batch, use_head, autocast_dtype), batch.tokens
    except torch.cuda.OutOfMemoryError as err:
        reason = str(err).splitlines()[0] if str(err) else "out of memory"
    # Outside the except block: the failed call's frames (and tensors) are released.
    n_rows, width = batch.input_ids.shape
    if torch.is_grad_enabled() or n_rows == 1:
        raise torch.cuda.OutOfMemoryError(_oom_message(n_rows, width, reason))
    if net.empty.device.type == "cuda":
        torch.cuda.empty_cache()
    halves = [_run_batch(net, half, use_head, autocast_dtype) for half in split_batch(batch)]
    return torch.cat([out for out, _ in halves]), np.concatenate([t for _, t in halves])


def _oom_message(n_rows: int, width: int, reason: str) -> str:
    if torch.is_grad_enabled():
        where = f"training on {n_rows} window(s) of {width} wordpieces"
        advice = "lower `batch_wordpieces` (padded wordpieces per encoder call), the training "
        advice += "batch size, or `window`"
    else:
        where = f"encoding a single window of {width} wordpieces (no smaller batch exists)"
        advice = "lower `window` (and `context`), or `batch_wordpieces` if other batches fill "
        advice += "the device, or run on a device with more memory"
    return f"CUDA ran out of memory {where}: {advice}. ({reason})"
