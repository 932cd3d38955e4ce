"""Registered thinc architectures: the context-extended encoder and the token classifier."""

import os
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Tuple, cast

import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, PyTorchShim, torch2xp, xp2torch
from thinc.types import Floats2d

from .channels import doc_channel_ids, initialize_channels, table_rows
from .context_net import ContextNet, run_plan
from .memory import MemorySettings, memory_settings, token_slots
from .net_loading import deserialize_net, load_pretrained, serialize_net
from .planning import BatchPlan, plan_batch
from .positions import usable_positions
from .precision import autocast_dtype
from .quantization import use_cpu_quantize
from .settings import EncoderSettings

__all__ = [
    "build_context_extended_transformer",
    "build_context_extended_transformer_v2",
    "build_token_classifier",
    "get_net",
    "plan_docs",
    "apply_usage_settings",
    "restore_usage_settings",
]


def _one_torch_thread_in_forked_child() -> None:
    torch.set_num_threads(1)


# A process forked after torch ran CPU ops on its OpenMP pool hangs at its first parallel
# op (seen with spaCy's nlp.pipe(n_process=2), which forks on Linux). One thread per
# forked worker avoids the inherited pool; the worker processes are the parallelism there.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_torch_thread_in_forked_child)


DEFAULTS = EncoderSettings()


@registry.architectures("spacy-ctxext.ContextExtendedTransformer.v1")
def build_context_extended_transformer(
    name: str = DEFAULTS.name,
    window: Optional[int] = DEFAULTS.window,
    context: Optional[int] = DEFAULTS.context,
    isolate_sentences: bool = DEFAULTS.isolate_sentences,
    max_position_embeddings: Optional[int] = DEFAULTS.max_position_embeddings,
    position_extension: str = DEFAULTS.position_extension,
    rope_scaling: Optional[dict] = DEFAULTS.rope_scaling,
    batch_wordpieces: int = DEFAULTS.batch_wordpieces,
    attention_dropout: Optional[float] = DEFAULTS.attention_dropout,
    mixed_precision: Optional[str] = DEFAULTS.mixed_precision,
    cpu_bfloat16: bool = DEFAULTS.cpu_bfloat16,
    cpu_quantize: Optional[str] = DEFAULTS.cpu_quantize,
    attn_implementation: str = DEFAULTS.attn_implementation,
    trust_remote_code: bool = DEFAULTS.trust_remote_code,
) -> Model[List[Doc], List[Floats2d]]:
    """Any HF encoder over context windows, one output vector per spaCy token.

    name: a local encoder folder, an installed model package, or a hub name.
    window: wordpieces per window, special tokens included (default: all positions).
    context: wordpieces each window reads at least on either side of the part it
        predicts (default: an eighth of the window; windows fill any spare room too).
    isolate_sentences: window each sentence alone, without context (the sentence baseline).
    max_position_embeddings: grow the encoder's position range to this many positions.
    position_extension: "none", "copy" or "interpolate" for absolute position tables.
    rope_scaling: HF ``rope_scaling`` dict for rotary encoders (linear, dynamic, yarn).
    batch_wordpieces: padded wordpieces per encoder call; windows are packed by length.
    attention_dropout: dropout on attention probabilities while training; 0 by default
        because SDPA with dropout takes a ~2x slower path (null keeps the encoder's own).
    mixed_precision: autocast dtype on GPU ("bfloat16", "float16") or null for fp32.
    cpu_bfloat16: autocast to bfloat16 on CPU too (about 2x faster where the CPU has
        avx512_bf16 or AMX); off by default because CPU predictions then differ from fp32.
    cpu_quantize: "int8" runs the encoder's linear layers in int8 at CPU inference (a
        quantized copy made at the first call; saved weights and training stay fp32), or
        null for fp32. For CPUs without bf16; predictions differ slightly from fp32.
    attn_implementation: "sdpa" (falls back to "eager" with a warning) or "eager".
    trust_remote_code: allow the encoder's own code from its folder (see docs/security.md).
    """
    settings = EncoderSettings(
        name=name,
        window=window,
        context=context,
        isolate_sentences=isolate_sentences,
        max_position_embeddings=max_position_embeddings,
        position_extension=position_extension,
        rope_scaling=rope_scaling,
        batch_wordpieces=batch_wordpieces,
        attention_dropout=attention_dropout,
        mixed_precision=mixed_precision,
        cpu_bfloat16=cpu_bfloat16,
        cpu_quantize=cpu_quantize,
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
    )
    shim = PyTorchShim(
        ContextNet(), serialize_model=serialize_net, deserialize_model=deserialize_net
    )
    return Model(
        "ctxext.encoder",
        encoder_forward,
        init=encoder_init,
        shims=[shim],
        dims={"nO": None},
        attrs=settings.to_attrs(),
    )


@registry.architectures("spacy-ctxext.ContextExtendedTransformer.v2")
def build_context_extended_transformer_v2(
    name: str = DEFAULTS.name,
    window: Optional[int] = DEFAULTS.window,
    context: Optional[int] = DEFAULTS.context,
    isolate_sentences: bool = DEFAULTS.isolate_sentences,
    max_position_embeddings: Optional[int] = DEFAULTS.max_position_embeddings,
    position_extension: str = DEFAULTS.position_extension,
    rope_scaling: Optional[dict] = DEFAULTS.rope_scaling,
    batch_wordpieces: int = DEFAULTS.batch_wordpieces,
    attention_dropout: Optional[float] = DEFAULTS.attention_dropout,
    mixed_precision: Optional[str] = DEFAULTS.mixed_precision,
    cpu_bfloat16: bool = DEFAULTS.cpu_bfloat16,
    cpu_quantize: Optional[str] = DEFAULTS.cpu_quantize,
    attn_implementation: str = DEFAULTS.attn_implementation,
    trust_remote_code: bool = DEFAULTS.trust_remote_code,
    # Any, not Channel: confection validates the unresolved blocks of a dict argument
    # against its value type; each value is checked to be a Channel at initialize.
    features: Optional[Dict[str, Any]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """v1's encoder (same settings) with ``features``: channels by name (config blocks such
    as ``@misc = "spacy-ctxext.casing.v1"``, see ``channels``) whose embeddings are added
    to every wordpiece of their token before the first layer. Without features it is v1.
    """
    settings = dict(locals())  # v1's arguments, passed on as they are
    channels = settings.pop("features") or {}
    model = build_context_extended_transformer(**settings)
    for key, channel in channels.items():
        channel.name = key
    model.shims[0]._model.channels = dict(channels)
    return model


@registry.architectures("spacy-ctxext.TokenClassifier.v1")
def build_token_classifier(
    encoder: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None
) -> Model[List[Doc], List[Floats2d]]:
    """The encoder with a linear head: one row of tag logits per spaCy token.

    The head runs inside the encoder's torch loop, so only the logits (not the
    hidden vectors) of a batch ever leave the device.
    """
    return build_token_classifier_v2(encoder, None, nO)


@registry.architectures("spacy-ctxext.TokenClassifier.v2")
def build_token_classifier_v2(
    encoder: Model[List[Doc], List[Floats2d]],
    memory: Optional[MemorySettings] = None,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """v1 with an optional document memory (``spacy-ctxext.DocumentMemory.v1``) that
    every token reads before the head; without one it is v1."""
    return Model(
        "ctxext.token_classifier",
        classifier_forward,
        init=classifier_init,
        layers=[encoder],
        dims={"nO": nO},
        attrs={"memory": memory.to_dict() if memory else None},
    )


def get_net(encoder: Model) -> ContextNet:
    """The encoder's torch module, loaded (initialized or deserialized)."""
    net = encoder.shims[0]._model
    if not net.is_loaded:
        raise ValueError(
            "The ctxext encoder has no weights yet: call nlp.initialize() before using it, "
            "or load a trained pipeline with spacy.load()."
        )
    return net


def encoder_init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    shim = cast(PyTorchShim, model.shims[0])  # the one the builder made
    settings = EncoderSettings.of(model)
    if not shim._model.is_loaded:
        channels = shim._model.channels
        net = load_pretrained(settings).to(shim.device)
        net.channels = channels
        if channels:  # their vocabularies from the docs, then a zero table
            initialize_channels(channels, list(X or []))
            net.set_channel_rows(table_rows(channels))
        shim._model = net
    _fit_settings(model, settings)
    model.set_dim("nO", get_net(model).width)


def _fit_settings(encoder: Model, settings: EncoderSettings) -> None:
    """Store ``settings`` fitted to the loaded net: window sizes filled in and checked."""
    net = get_net(encoder)
    assert net.encoder is not None  # get_net checked that the net is loaded
    prefix, suffix = net.specials
    fitted = settings.fitted(
        positions=usable_positions(net.encoder), n_special=len(prefix) + len(suffix)
    )
    encoder.attrs.update(fitted.to_attrs())


def apply_usage_settings(encoder: Model, usage: Dict[str, Any]) -> None:
    """Give a loaded encoder other usage settings (``EncoderSettings.USAGE``), checked
    as at initialize; e.g. windows of other sizes than it was trained with."""
    unknown = set(usage) - set(EncoderSettings.USAGE)
    if unknown:
        raise ValueError(
            f"{sorted(unknown)} cannot change after training: only "
            f"{list(EncoderSettings.USAGE)} can."
        )
    _fit_settings(encoder, replace(EncoderSettings.of(encoder), **usage))


def restore_usage_settings(encoder: Model, usage: Dict[str, Any]) -> None:
    """Re-apply the configured usage settings after the saved model was loaded.

    thinc restores a saved model's attrs over those built from the config, so a value
    the config sets (e.g. spacy.load(path, config=...)) is put back: the config wins.
    """
    if encoder.shims[0]._model.is_loaded:  # else no attrs were loaded over the config
        apply_usage_settings(encoder, usage)


def encoder_forward(
    model: Model, docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], List[Doc]]]:
    return encode(model, docs, is_train, use_head=False)


def classifier_init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    encoder = model.layers[0]
    encoder.initialize(X=X)
    if Y is not None and not model.has_dim("nO"):
        model.set_dim("nO", Y[0].shape[1])
    if not model.has_dim("nO"):
        raise ValueError("TokenClassifier needs nO (the number of tags) before initialize.")
    net = get_net(encoder)
    net.set_head(model.get_dim("nO"))
    net.set_memory(memory_settings(model.attrs.get("memory")))


def classifier_forward(
    model: Model, docs: List[Doc], is_train: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], List[Doc]]]:
    return encode(model.layers[0], docs, is_train, use_head=True)


def plan_docs(encoder: Model, docs: List[Doc]) -> BatchPlan:
    """The packed encoder batches for ``docs``, with the encoder's window settings."""
    net = get_net(encoder)
    settings = EncoderSettings.of(encoder)
    assert settings.window is not None and settings.context is not None  # set at init
    token_channels = None
    if net.channel_embeddings is not None:
        token_channels = [doc_channel_ids(net.channels, doc) for doc in docs]
    return plan_batch(
        docs,
        net.backend,
        specials=net.specials,
        pad_id=net.pad_id,
        window=settings.window,
        context=settings.context,
        isolate_sentences=settings.isolate_sentences,
        batch_wordpieces=settings.batch_wordpieces,
        token_channels=token_channels,
    )


def encode(
    encoder: Model, docs: List[Doc], is_train: bool, *, use_head: bool
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], List[Doc]]]:
    """Run the docs through the encoder; return one array per doc and the backprop."""
    if not docs:
        return [], lambda d_arrays: []
    net = get_net(encoder)
    plan = plan_docs(encoder, docs)
    device = net.empty.device
    settings = EncoderSettings.of(encoder)
    dtype = autocast_dtype(settings.mixed_precision, settings.cpu_bfloat16, device)
    use_cpu_quantize(net, settings.cpu_quantize, device, is_train=is_train)
    net.train(is_train)
    slots = None
    if use_head and net.memory_settings is not None:
        slots = token_slots(docs, net.memory_settings.min_count)
    with torch.set_grad_enabled(is_train):
        outputs = run_plan(
            net, plan, use_head=use_head, autocast_dtype=dtype, memory_slots=slots
        )
    array = torch2xp(outputs.detach(), ops=encoder.ops)
    arrays = encoder.ops.xp.split(array, plan.doc_lengths.cumsum()[:-1])

    def backprop(d_arrays: List[Floats2d]) -> List[Doc]:
        if outputs.requires_grad and plan.n_tokens:
            grads = xp2torch(encoder.ops.xp.concatenate(d_arrays), device=device)
            torch.autograd.backward(outputs, grad_tensors=grads)
        return []

    return list(arrays), backprop
