"""The encoder layer's shim: thinc's ``PyTorchShim`` over the ``ContextNet``, holding what
runs beside the net but is not its torch computation: the encoder's tokenizer, the channel
objects, the module that replaces the encoder at inference, and the loss scaling of
float16 training. Code reads these through the accessors here, never the shim's ``_model``.

Of thinc's shim, the update step (``finish_update``: skipped when a scaled gradient
overflowed), the gradient scaler, devices and ``use_params`` are used, not its forward:
thinc autocasts only on CUDA and only to float16, whereas the encoder's precision is
chosen per device (``compute_dtype``: bf16 or fp16 on GPU, bf16 or int8 on CPU) and one
forward runs an encoder call per packed batch, then the document memory
(``plan_runner``).
"""

from typing import Dict, Optional, cast

import srsly
import torch
from thinc.api import Model, Optimizer, PyTorchGradScaler, PyTorchShim
from thinc.util import get_torch_default_device

from ..channels.base import Channel
from ..tokenization.encoder_tokenizer import EncoderTokenizer
from .pytorch.context_net import ContextNet
from .pytorch.net_loading import LoadedNet
from .pytorch.net_serialization import deserialize_net, serialize_net

__all__ = ["ContextNetShim", "encoder_shim", "has_channels"]

NOT_LOADED = (
    "The ctxext encoder has no weights yet: call nlp.initialize() before using it, "
    "or load a trained pipeline with spacy.load()."
)


class ContextNetShim(PyTorchShim):
    """A ``ContextNet`` (``net``) with its tokenizer (``tokenizer``), the configured
    ``channels`` and the ``inference_encoder``, saved as one.

    channels: the channel objects by name (not torch modules: their vocabularies are saved
        with the net's bytes; the net holds their embedding table).
    loss_scaling: scale the loss (float16 training, see ``set_loss_scaling``).
    """

    def __init__(self, channels: Dict[str, Channel], *, loss_scaling: bool = False) -> None:
        super().__init__(ContextNet(), grad_scaler=PyTorchGradScaler(enabled=loss_scaling))
        self.channels = channels
        self._loss_scaling = loss_scaling
        self._tokenizer: Optional[EncoderTokenizer] = None
        # What runs in place of the net's encoder when it is not training, or None: the
        # int8 copy of cpu_precision = "int8" (quantization) or the benchmark's null
        # encoder. Kept here, not on the net: never saved, moved to a device or trained.
        self.inference_encoder: Optional[torch.nn.Module] = None

    @property
    def is_loaded(self) -> bool:
        return cast(ContextNet, self._model).is_loaded

    @property
    def net(self) -> ContextNet:
        """The net, loaded (initialized or deserialized)."""
        if not self.is_loaded:
            raise ValueError(NOT_LOADED)
        return cast(ContextNet, self._model)

    @property
    def tokenizer(self) -> EncoderTokenizer:
        """The loaded encoder's tokenizer."""
        if self._tokenizer is None:
            raise ValueError(NOT_LOADED)
        return self._tokenizer

    def load(self, loaded: LoadedNet) -> None:
        """Hold ``loaded``'s net and tokenizer from now on (built at initialize)."""
        self._model, self._tokenizer = loaded

    @property
    def grad_scaler(self) -> PyTorchGradScaler:
        return self._grad_scaler

    def set_loss_scaling(self, enabled: bool) -> None:
        """Scale the loss of the training steps to come, or not: on for float16 training,
        whose small gradients would underflow to zero. A scaler made here starts from
        thinc's initial scale (the precision changed, e.g. the usage settings)."""
        if enabled != self._loss_scaling:
            self._grad_scaler = PyTorchGradScaler(enabled=enabled)
            self._grad_scaler.to_(self.device)
            self._loss_scaling = enabled

    def backward(self, outputs: torch.Tensor, d_outputs: torch.Tensor) -> None:
        """Backprop ``d_outputs`` (the loss's gradient for ``outputs``) into the net's
        parameters, scaled by the loss scale while loss scaling is on (it is a no-op
        otherwise): the chain rule then scales every gradient as scaling the loss would.
        ``finish_update`` unscales them."""
        scaled = cast(torch.Tensor, self._grad_scaler.scale(d_outputs, inplace=True))
        torch.autograd.backward(outputs, grad_tensors=scaled)

    def finish_update(self, optimizer: Optimizer) -> None:
        """Unscale the gradients, then thinc's update: skipped, and the scale lowered, if
        any gradient overflowed; the scale grows after steps without overflow.

        Unscaling once here rather than after each backprop (as thinc's forward does)
        keeps the gradients of several backprops accumulated before one update
        (``accumulate_gradient``) unscaled exactly once.
        """
        grads = [p.grad for p in self._model.parameters() if p.grad is not None]
        self._grad_scaler.unscale(grads)  # sets found_inf, which the update reads
        super().finish_update(optimizer)

    def to_bytes(self) -> bytes:
        state = serialize_net(self._model, self._tokenizer, self.channels)
        return srsly.msgpack_dumps({"config": self.cfg, "state": state})

    def from_bytes(self, bytes_data: bytes) -> "ContextNetShim":
        """Load the net and tokenizer of ``to_bytes``, and the channels' vocabularies."""
        device = get_torch_default_device()
        msg = srsly.msgpack_loads(bytes_data)
        self.cfg = msg["config"]
        self.load(deserialize_net(msg["state"], device, self.channels))
        self._grad_scaler.to_(device)
        return self


def encoder_shim(encoder: Model) -> ContextNetShim:
    """The shim of a ``spacy-ctxext.ContextExtendedTransformer`` layer."""
    shim = encoder.shims[0] if encoder.shims else None
    if not isinstance(shim, ContextNetShim):
        raise TypeError(
            f"{encoder.name!r} is not a spacy-ctxext encoder layer: pass the first layer "
            "of a ctx_ner model built by spacy-ctxext.TokenClassifier."
        )
    return shim


def has_channels(layer: Model) -> bool:
    """Whether ``layer`` is a ctxext encoder with channels (known before its net is
    loaded); False for any other layer."""
    shim = layer.shims[0] if layer.shims else None
    return isinstance(shim, ContextNetShim) and bool(shim.channels)
