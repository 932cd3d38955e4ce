"""Running a ``BatchPlan`` through a ``ContextNet``: every padded encoder call in turn,
its outputs scattered into the docs' token order (through the document memory where
the net has one), and the CUDA out-of-memory split at inference.

The net computes one call (``ContextNet.forward``); which wordpieces go in each call is
``planning.batch_plan``.
"""

from typing import NamedTuple, Optional, Tuple

import numpy as np
import torch

from ..planning.batch_plan import BatchPlan, EncoderBatch, split_batch
from .memory import TokenIndex
from .pytorch.context_net import ContextNet
from .pytorch.memory_writer import MemoryWriter

__all__ = ["as_long", "run_plan"]


def run_plan(
    net: ContextNet,
    plan: BatchPlan,
    *,
    use_head: bool,
    autocast_dtype: Optional[torch.dtype] = None,
    memory_index: Optional[TokenIndex] = None,
    inference_encoder: Optional[torch.nn.Module] = None,
) -> torch.Tensor:
    """Encode every batch and return one output row per token, in the docs' token order.

    inference_encoder: runs in place of the net's encoder when the net is not training
    (``ContextNetShim.inference_encoder``: the int8 copy, the benchmark's null encoder).
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
    call = EncoderCall(
        use_head and writer is None,
        autocast_dtype,
        None if net.training else inference_encoder,
    )
    for batch in plan.batches:
        out, tokens = _run_batch(net, batch, call)
        index = as_long(tokens, device)
        outputs[index] = out if writer is None else writer.write(out, index)
    if len(plan.empty_tokens):
        empty = as_long(plan.empty_tokens, device)
        outputs[empty] = net.empty_output(use_head).expand(len(empty), -1)
    return outputs if writer is None else writer.read(outputs)


def as_long(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """An index or id array as the int64 tensor torch and HF encoders expect."""
    return torch.from_numpy(array).to(device=device, dtype=torch.long)


class EncoderCall(NamedTuple):
    """How each batch of a plan runs: with the head or not, the autocast dtype (None:
    none), and the module run in place of the net's encoder (None: the encoder)."""

    use_head: bool
    autocast_dtype: Optional[torch.dtype]
    replacement: Optional[torch.nn.Module]


def _encode_batch(net: ContextNet, batch: EncoderBatch, call: EncoderCall) -> torch.Tensor:
    device = net.empty.device
    dtype = call.autocast_dtype
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        out = net(
            as_long(batch.input_ids, device),
            as_long(batch.attention_mask, device),
            as_long(batch.rows, device),
            as_long(batch.cols, device),
            call.use_head,
            None if batch.channel_ids is None else as_long(batch.channel_ids, device),
            call.replacement,
        )
    return out.float()


def _run_batch(
    net: ContextNet, batch: EncoderBatch, call: EncoderCall
) -> Tuple[torch.Tensor, np.ndarray]:
    """One batch's outputs and their tokens; at inference, halve the batch on CUDA OOM.

    Splitting only changes how many windows share an encoder call, not what a window
    reads, so the outputs are those of the whole batch. In training the activations
    of the batches already run are held for backprop: splitting would not free them.
    """
    try:
        return _encode_batch(net, batch, call), batch.tokens
    except torch.cuda.OutOfMemoryError as err:
        reason = str(err).splitlines()[0] if str(err) else "out of memory"
    # Outside the except block: the failed call's frames (and tensors) are released.
    n_rows, width = batch.input_ids.shape
    if torch.is_grad_enabled() or n_rows == 1:
        raise torch.cuda.OutOfMemoryError(_oom_message(n_rows, width, reason))
    if net.empty.device.type == "cuda":
        torch.cuda.empty_cache()
    halves = [_run_batch(net, half, call) for half in split_batch(batch)]
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
