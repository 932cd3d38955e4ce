"""int8 inference on CPU (``cpu_quantize = "int8"``): a quantized copy of the encoder.

The copy replaces every ``torch.nn.Linear`` of the encoder with an ``Int8Linear``:
weights quantized per output channel once, activations quantized at run time, the
matrix products in int8 with int32 sums (fbgemm/x86, onednn or qnnpack kernels). It is
built at the first inference call, kept on the ``ContextNet`` as its inference encoder
(not a submodule: never saved, moved or trained) and rebuilt when the fp32 weights
change; training always runs the fp32 encoder, and saved pipelines keep fp32 weights.

Activations are quantized with one scale per window, from that window's wordpieces
only (padding left out): a window's outputs then do not depend on the other windows
of its batch or on how far it is padded, so predictions stay the same for any batch
size or ``batch_wordpieces``, as in fp32. (``torch.ao.quantization.quantize_dynamic``
takes one scale per call, over the whole padded batch: predictions would move with
the batch.)

Why these torch ops: torch 2.13 marks ``torch.ao.quantization`` and the quantized
tensor types deprecated in favour of torchao, but torchao's int8 dynamic quantization
has no eager CPU kernel (4.5x slower than fp32 on this project's CPU without
``torch.compile``), while ``quantized.linear_dynamic`` is 2x faster than fp32 here. The
two deprecation warnings these ops give are filtered around the calls, by message.
"""

import copy
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Tuple

import torch

# The messages of the deprecation warnings torch 2.13 gives for the ops used here.
DEPRECATIONS = (r"torch\.ao\.quantization is deprecated", r"torch\.quantize_per_\w+")


class CpuQuantizeWarning(UserWarning):
    """cpu_quantize is set, but this torch has no int8 kernels here: the encoder runs fp32."""


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        yield


def int8_engine() -> Optional[str]:
    """The quantized engine torch uses here, or None where it has none with int8 kernels."""
    engine = torch.backends.quantized.engine
    supported = torch.backends.quantized.supported_engines
    return engine if engine != "none" and engine in supported else None


class _Windows:
    """The real (unpadded) length of each window of the batch being encoded."""

    lengths: Optional[List[int]] = None


class Int8Linear(torch.nn.Module):
    """A Linear layer in int8: per-channel weights, one activation scale per window."""

    def __init__(self, linear: torch.nn.Linear, windows: _Windows) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12).double()
        zeros = torch.zeros(weight.shape[0], dtype=torch.long)
        bias = None if linear.bias is None else linear.bias.detach().float()
        with _quiet_deprecations():
            qweight = torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.out_features = linear.out_features
        self._windows = windows

    def _linear(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range: 7-bit activations, so fbgemm's int16 pair sums cannot saturate.
        return torch.ops.quantized.linear_dynamic(x.float(), self._packed, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = self._windows.lengths
        if x.dim() != 3:
            return self._linear(x)
        if lengths is None or len(lengths) != x.shape[0]:  # called without Int8Encoder
            lengths = [x.shape[1]] * x.shape[0]
        out = x.new_zeros((*x.shape[:2], self.out_features), dtype=torch.float32)
        for i, n in enumerate(lengths):  # padding stays 0: attention masks it out
            if n:
                out[i, :n] = self._linear(x[i, :n])
        return out


class Int8Encoder(torch.nn.Module):
    """A copy of an HF encoder whose Linear layers run in int8 (CPU inference only)."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.source_versions = weight_versions(encoder)
        self._windows = _Windows()
        self.model = copy.deepcopy(encoder).float().eval()
        _swap_linears(self.model, self._windows)

    def forward(self, attention_mask: torch.Tensor, **inputs: Any) -> Any:
        self._windows.lengths = attention_mask.sum(dim=1).tolist()
        try:
            return self.model(attention_mask=attention_mask, **inputs)
        finally:
            self._windows.lengths = None


def _swap_linears(module: torch.nn.Module, windows: _Windows) -> None:
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear(child, windows))
        else:
            _swap_linears(child, windows)


def weight_versions(module: torch.nn.Module) -> Tuple[Tuple[int, int], ...]:
    """Identity and in-place version of each parameter: changes when training moves them."""
    return tuple((id(p), p._version) for p in module.parameters())


def use_cpu_quantize(
    net: Any, mode: Optional[str], device: torch.device, *, is_train: bool = False
) -> None:
    """Give ``net`` (a ``ContextNet``) the int8 inference encoder ``mode`` asks for, built
    once and rebuilt when the fp32 weights may have changed: after training (thinc's
    optimizer writes the weights in place, unseen by torch) or an in-place torch write.
    None, a GPU or training clears it. An inference encoder set by hand (e.g. the
    benchmark's null encoder) is left alone."""
    current = net.inference_encoder
    if current is not None and not isinstance(current, Int8Encoder):
        return
    if mode != "int8" or device.type != "cpu" or is_train:
        if current is not None:
            net.set_inference_encoder(None)
        return
    if current is not None and current.source_versions == weight_versions(net.encoder):
        return
    if int8_engine() is None:
        _warn_no_int8(f"torch's quantized engine is {torch.backends.quantized.engine!r}")
        return
    try:
        net.set_inference_encoder(Int8Encoder(net.encoder))
    except RuntimeError as err:  # e.g. a backend without per-channel dynamic kernels
        _warn_no_int8(str(err).splitlines()[0] if str(err) else type(err).__name__)


_WARNED: List[str] = []


def _warn_no_int8(reason: str) -> None:
    if _WARNED:
        return
    _WARNED.append(reason)
    warnings.warn(
        f"cpu_quantize = 'int8' is set, but int8 kernels are not available here ({reason}): "
        "the encoder runs in fp32. Set cpu_quantize = null in "
        "[components.ctx_ner.model.encoder] to silence this.",
        CpuQuantizeWarning,
        stacklevel=3,
    )
