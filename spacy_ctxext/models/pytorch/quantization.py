"""int8 inference on CPU (``cpu_precision = "int8"``): a quantized copy of the encoder.

The copy replaces every ``torch.nn.Linear`` of the encoder with an ``Int8Linear``:
weights quantized per output channel once, activations per wordpiece (one scale per row)
at run time, and one int8 matrix product with int32 sums per layer call
(``torch._int_mm``: oneDNN's s8s8s32 GEMM on x86, exact in int32). It is built at the
first inference call, kept beside the ``ContextNet`` as its inference encoder (by the
encoder layer's shim, never saved, moved or trained) and rebuilt when the fp32 weights change;
training always runs the fp32 encoder, and saved pipelines keep fp32 weights.

One scale per wordpiece means a window's outputs depend on nothing else in its batch
(not the other windows, not the padding): predictions stay the same for any batch size
or ``batch_wordpieces``, as in fp32. (``torch.ao.quantization.quantize_dynamic`` takes
one scale per call, over the whole padded batch, so predictions would move with the
batch; one ``quantized.linear_dynamic`` call per window instead kept them fixed but made
thousands of small calls per batch, and ran at half fp32's speed on this project's CPU.)

Why ``torch._int_mm``: torch 2.13 marks ``torch.ao.quantization`` and the quantized
tensor types deprecated in favour of torchao, whose int8 dynamic quantization has no
eager CPU kernel (4.5x slower than fp32 here without ``torch.compile``). ``_int_mm`` is a
plain tensor op: measured 3.3x faster than the fp32 product for 4,096 x 384 @ 384 x 1,536
with 1 thread here, 1.8x with the activations' quantization and dequantization.
"""

import copy
from typing import Any, Optional, Tuple

import torch

from ...warn_once import WarnOnce


class CpuQuantizeWarning(UserWarning):
    """int8 is asked for, but this torch has no int8 kernels here: the encoder runs fp32."""


def int8_matmul_error() -> Optional[str]:
    """Why ``torch._int_mm`` cannot run on this CPU, or None where it does (exactly)."""
    probe = torch.arange(-64, 64, dtype=torch.int8).reshape(16, 8)
    try:
        product = torch._int_mm(probe, probe[:8].T.contiguous())
    except (RuntimeError, AttributeError, NotImplementedError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    exact = probe.long() @ probe[:8].T.long()
    return None if bool((product.long() == exact).all()) else "inexact int8 products"


class Int8Linear(torch.nn.Module):
    """A Linear layer in int8: per-channel weights, one activation scale per row."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        self.weight_scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)
        qweight = torch.round(weight / self.weight_scale.unsqueeze(1)).to(torch.int8)
        self.qweight_t = qweight.T.contiguous()  # (in, out), as _int_mm takes it
        self.bias = None if linear.bias is None else linear.bias.detach().float()
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).float()
        scale = rows.abs().amax(dim=1, keepdim=True).div_(127).clamp_(min=1e-12)
        qrows = (rows / scale).round_().to(torch.int8)
        # int32 * fp32 gives fp32 in one pass; then in place: the (rows, out) products are
        # the layer's largest tensors, and each extra pass over them costs ~10% here.
        out = torch._int_mm(qrows, self.qweight_t) * self.weight_scale
        out.mul_(scale)
        if self.bias is not None:
            out.add_(self.bias)
        return out.reshape(*x.shape[:-1], self.out_features)


class Int8Encoder(torch.nn.Module):
    """A copy of an HF encoder whose Linear layers run in int8 (CPU inference only)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.source_versions = weight_versions(encoder)
        self.model = copy.deepcopy(encoder).float().eval()
        _swap_linears(self.model)

    def forward(self, **inputs: Any) -> Any:
        return self.model(**inputs)


def _swap_linears(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear(child))
        else:
            _swap_linears(child)


def weight_versions(module: torch.nn.Module) -> Tuple[Tuple[int, int], ...]:
    """Identity and in-place version of each parameter: changes when training moves them."""
    return tuple((id(p), p._version) for p in module.parameters())


def int8_inference_encoder(
    current: Optional[torch.nn.Module],
    encoder: torch.nn.Module,
    mode: Optional[str],
    device: torch.device,
    *,
    is_train: bool = False,
) -> Optional[torch.nn.Module]:
    """The inference encoder to run in place of ``encoder`` where ``current`` ran: the
    int8 copy ``mode`` asks for, built once and rebuilt when the fp32 weights may have
    changed: after training (thinc's optimizer writes the weights in place, unseen by
    torch) or an in-place torch write. None, a GPU or training clear it (None). An
    inference encoder set by hand (e.g. the benchmark's null encoder) is kept."""
    if current is not None and not isinstance(current, Int8Encoder):
        return current
    if mode != "int8" or device.type != "cpu" or is_train:
        return None
    if current is not None and current.source_versions == weight_versions(encoder):
        return current
    error = int8_matmul_error()
    if error is not None:
        _warn_no_int8(error)
        return None
    return Int8Encoder(encoder)


_NO_INT8 = WarnOnce(CpuQuantizeWarning)


def _warn_no_int8(reason: str) -> None:
    _NO_INT8.warn(
        f"cpu_precision = 'int8' is set, but int8 kernels are not available here ({reason}): "
        "the encoder runs in fp32. Set cpu_precision = 'auto' in "
        "[components.ctx_ner.model.encoder] to silence this.",
        stacklevel=3,
    )
