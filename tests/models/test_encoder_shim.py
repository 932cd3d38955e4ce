"""The encoder layer's shim: what it holds beside the net, and the loss scaling of float16
training (gradients scaled in backprop, unscaled once before thinc's update, the update
skipped and the scale lowered on overflow)."""

from functools import partial

import pytest
import spacy
import torch
from thinc.api import SGD, PyTorchGradScaler, Relu
from thinc.util import has_cupy_gpu
from util import encoder_of, make_examples, make_nlp

from spacy_ctxext.channels.builtins import AttrChannel
from spacy_ctxext.models import encoder_layer, encoder_shim
from spacy_ctxext.models.architectures import build_context_extended_transformer
from spacy_ctxext.models.encoder_layer import encoder_precision, get_net
from spacy_ctxext.models.encoder_shim import ContextNetShim, has_channels
from spacy_ctxext.models.pytorch.compute_dtype import FP32, Precision

FLOAT16 = Precision("float16", torch.float16)


class RecordingScaler(PyTorchGradScaler):
    """thinc's gradient scaler, recording the scale of each backprop's gradients."""

    def __init__(self, enabled: bool = False, **settings) -> None:
        super().__init__(enabled, **settings)
        self.scales = []

    def scale(self, tensors, inplace=False):
        if self._enabled:
            self.scales.append(float(self._scale))
        return super().scale(tensors, inplace=inplace)


class CpuScaler(RecordingScaler):
    """The recording scaler, scaling CPU tensors too (thinc's refuses them)."""

    def _scale_tensor(self, tensor, scale_per_device, inplace):
        return tensor.mul_(self._scale) if inplace else tensor * self._scale


def float16_nlp(tiny_bert, monkeypatch, scaler):
    """An initialized ctx_ner whose training runs in float16 autocast on this CPU, as it
    would on a GPU, with ``scaler`` for its gradient scaler."""
    monkeypatch.setattr(encoder_shim, "PyTorchGradScaler", scaler)

    def precision(encoder, device=None, *, is_train=False):
        return FLOAT16 if is_train else FP32

    monkeypatch.setattr(encoder_layer, "encoder_precision", precision)
    nlp = make_nlp(tiny_bert, mixed_precision="float16")
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


def params(nlp):
    return [p.detach().clone() for p in get_net(encoder_of(nlp)).parameters()]


def test_the_shim_holds_the_channels_before_the_net_is_loaded():
    layer = build_context_extended_transformer(channels={"stop": AttrChannel("IS_STOP", 4)})
    assert has_channels(layer) and not encoder_shim.encoder_shim(layer).is_loaded
    assert not has_channels(build_context_extended_transformer())
    assert not has_channels(Relu())  # another layer: no shim at all
    with pytest.raises(TypeError, match="not a spacy-ctxext encoder layer"):
        encoder_shim.encoder_shim(Relu())
    with pytest.raises(ValueError, match=r"call nlp.initialize\(\)"):
        get_net(layer)


def test_float16_gradients_are_scaled_and_unscaled_once_before_the_update(
    tiny_bert, monkeypatch, one_torch_thread
):
    """A loss scale of 2**8 against none: the same gradients reach the optimizer (plain
    SGD, which would move the weights 256 times as far otherwise), but backprop held
    them scaled, so that fewer underflow in float16."""
    nlps = [
        float16_nlp(tiny_bert, monkeypatch, partial(CpuScaler, init_scale=scale))
        for scale in (2.0**8, 1.0)
    ]
    nlps[1].from_bytes(nlps[0].to_bytes())
    start = params(nlps[0])
    grads, updated = [], []
    for nlp in nlps:
        torch.manual_seed(0)
        nlp.update(make_examples(nlp), sgd=False)  # backprop only
        net = get_net(encoder_of(nlp))
        grads.append([p.grad.clone() for p in net.parameters() if p.grad is not None])
        nlp.get_pipe("ctx_ner").finish_update(SGD(0.1))
        updated.append(params(nlp))
    for scaled, plain in zip(*grads):
        torch.testing.assert_close(scaled / 2**8, plain, rtol=1e-2, atol=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(start, updated[0]))
    for a, b in zip(*updated):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)
    assert encoder_shim.encoder_shim(encoder_of(nlps[0])).grad_scaler.scales == [2.0**8]


def test_an_overflowing_float16_step_is_skipped_and_the_scale_lowered(
    tiny_bert, monkeypatch, one_torch_thread
):
    # float16 holds up to 65504: gradients scaled by 2**100 overflow in its backward.
    nlp = float16_nlp(tiny_bert, monkeypatch, partial(CpuScaler, init_scale=2.0**100))
    scaler = encoder_shim.encoder_shim(encoder_of(nlp)).grad_scaler
    before = params(nlp)
    optimizer = SGD(0.1)
    for _ in range(2):
        nlp.update(make_examples(nlp), sgd=optimizer)
    assert scaler.scales == [2.0**100, 2.0**99]  # halved after the overflow
    assert all(torch.equal(a, b) for a, b in zip(before, params(nlp)))
    net = get_net(encoder_of(nlp))
    assert all(not p.grad.any() for p in net.parameters() if p.grad is not None)


def test_float16_setting_on_cpu_trains_in_fp32_without_scaling(tiny_bert, one_torch_thread):
    """The precision on CPU is cpu_precision's: float16 never runs there, and thinc's
    scaler, which refuses CPU tensors (a ValueError), does not scale."""
    nlp = make_nlp(tiny_bert, mixed_precision="float16")
    optimizer = nlp.initialize(lambda: make_examples(nlp))
    assert isinstance(encoder_shim.encoder_shim(encoder_of(nlp)), ContextNetShim)
    before = params(nlp)
    nlp.update(make_examples(nlp), sgd=optimizer)
    assert any(not torch.equal(a, b) for a, b in zip(before, params(nlp)))


@pytest.mark.skipif(not has_cupy_gpu, reason="needs a CUDA GPU and cupy (spaCy's GPU training)")
def test_float16_training_on_cuda_scales_the_loss(tiny_bert, monkeypatch):
    """On a GPU, thinc's own scaler: a scale that overflows float16 skips the step and
    halves the scale, until the gradients fit and the weights move."""
    monkeypatch.setattr(
        encoder_shim, "PyTorchGradScaler", partial(RecordingScaler, init_scale=2.0**40)
    )
    spacy.require_gpu()
    try:
        nlp = make_nlp(tiny_bert, mixed_precision="float16")
        optimizer = nlp.initialize(lambda: make_examples(nlp))
        encoder = encoder_of(nlp)
        assert get_net(encoder).empty.device.type == "cuda"
        assert encoder_precision(encoder, is_train=True) == FLOAT16
        scaler = encoder_shim.encoder_shim(encoder).grad_scaler
        moved = False
        for _ in range(40):
            before = params(nlp)
            nlp.update(make_examples(nlp), sgd=optimizer)
            moved = any(not torch.equal(a, b) for a, b in zip(before, params(nlp)))
            if moved:
                break
        assert moved, f"every step overflowed: scales {scaler.scales}"
        assert len(scaler.scales) > 1  # 2**40 overflowed
        assert scaler.scales == [2.0 ** (40 - i) for i in range(len(scaler.scales))]
    finally:
        spacy.require_cpu()
