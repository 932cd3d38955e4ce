"""How the encoder and classifier Models run: load and fit the net at initialize, plan
and encode a batch of docs (autocast, int8, document memory), backprop into torch (loss
scaled in float16), and change a loaded encoder's usage settings.

The registered builders that make these Models from a config are ``architectures``.
"""

import os
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from spacy.tokens import Doc
from thinc.api import Model, torch2xp, xp2torch
from thinc.types import Floats2d

from ..channels.base import channel_rows, initialize_channels, table_rows
from ..planning.batch_plan import TRIM_AFTER_TOKENS, BatchPlan, plan_batch
from .encoder_shim import encoder_shim
from .memory import memory_settings, token_index
from .plan_runner import run_plan
from .pytorch.compute_dtype import Precision, run_precision
from .pytorch.context_net import ContextNet
from .pytorch.net_loading import LoadedNet, load_pretrained
from .pytorch.positions import usable_positions
from .pytorch.quantization import int8_inference_encoder
from .settings import EncoderSettings

__all__ = [
    "apply_usage_settings",
    "classifier_forward",
    "classifier_predict",
    "classifier_init",
    "encode",
    "encoder_forward",
    "encoder_init",
    "get_net",
    "plan_docs",
    "restore_usage_settings",
]


def _one_torch_thread_in_forked_child() -> None:
    torch.set_num_threads(1)


# A process forked after torch ran CPU ops on its OpenMP pool hangs at its first parallel
# op (seen with spaCy's nlp.pipe(n_process=2), which forks on Linux). One thread per
# forked worker avoids the inherited pool; the worker processes are the parallelism there.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_torch_thread_in_forked_child)


def get_net(encoder: Model) -> ContextNet:
    """The encoder layer's net (its ``ContextNet``), loaded (initialized or deserialized)."""
    return encoder_shim(encoder).net


def encoder_init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    shim = encoder_shim(model)
    settings = EncoderSettings.of(model)
    if not shim.is_loaded:
        net, tokenizer = load_pretrained(settings)
        net.to(shim.device)
        if shim.channels:  # their vocabularies from the docs, then a zero table
            initialize_channels(shim.channels, list(X or []))
            net.set_channel_rows(table_rows(shim.channels))
        shim.load(LoadedNet(net, tokenizer))
    _fit_settings(model, settings)
    model.set_dim("nO", get_net(model).width)


def _fit_settings(encoder: Model, settings: EncoderSettings) -> None:
    """Store ``settings`` fitted to the loaded net: window sizes filled in and checked."""
    net = get_net(encoder)
    assert net.encoder is not None  # get_net checked that the net is loaded
    prefix, suffix = encoder_shim(encoder).tokenizer.specials
    fitted = settings.fitted(
        positions=usable_positions(net.encoder),
        n_special=len(prefix) + len(suffix),
        n_suffix=len(suffix),
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
    if encoder_shim(encoder).is_loaded:  # else no attrs were loaded over the config
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


def classifier_predict(model: Model, docs: List[Doc], plan: BatchPlan) -> List[Floats2d]:
    """``model.predict(docs)`` of this package's classifier, with the docs' plan made
    beforehand (``plan_docs``, e.g. in ``prefetch``'s worker)."""
    return encode(model.layers[0], docs, False, use_head=True, plan=plan)[0]


def plan_docs(
    encoder: Model, docs: List[Doc], *, trim_after_tokens: Optional[int] = TRIM_AFTER_TOKENS
) -> BatchPlan:
    """The packed encoder batches for ``docs``, with the encoder's window settings.

    trim_after_tokens: as ``planning.plan_batch``'s (None: never trim the heap).
    """
    shim = encoder_shim(encoder)
    tokenizer = shim.tokenizer
    settings = EncoderSettings.of(encoder)
    assert settings.window is not None and settings.context is not None  # set at init
    token_channels = None
    if shim.net.channel_embeddings is not None:
        token_channels = channel_rows(shim.channels, docs)
    return plan_batch(
        docs,
        tokenizer.backend,
        specials=tokenizer.specials,
        pad_id=tokenizer.pad_id,
        window=settings.window,
        context=settings.context,
        isolate_sentences=settings.isolate_sentences,
        batch_wordpieces=settings.batch_wordpieces,
        token_channels=token_channels,
        trim_after_tokens=trim_after_tokens,
        retrieved_passages=settings.retrieved_passages,
        passage_pieces=settings.passage_pieces,
    )


def encode(
    encoder: Model,
    docs: List[Doc],
    is_train: bool,
    *,
    use_head: bool,
    plan: Optional[BatchPlan] = None,
) -> Tuple[List[Floats2d], Callable[[List[Floats2d]], List[Doc]]]:
    """Run the docs through the encoder; return one array per doc and the backprop.

    plan: the docs' ``plan_docs``, if made beforehand.
    """
    if not docs:
        return [], lambda d_arrays: []
    shim = encoder_shim(encoder)
    net = shim.net
    plan = plan_docs(encoder, docs) if plan is None else plan
    device = net.empty.device
    precision = encoder_precision(encoder, device, is_train=is_train)
    assert net.encoder is not None  # shim.net is loaded
    int8 = "int8" if precision.int8 else None
    shim.inference_encoder = int8_inference_encoder(
        shim.inference_encoder, net.encoder, int8, device, is_train=is_train
    )
    if is_train:
        shim.set_loss_scaling(precision.autocast == torch.float16)
    net.train(is_train)
    index = None
    if use_head and net.memory_settings is not None:
        index = token_index(docs, net.memory_settings)
    with torch.set_grad_enabled(is_train):
        outputs = run_plan(
            net,
            plan,
            use_head=use_head,
            autocast_dtype=precision.autocast,
            memory_index=index,
            inference_encoder=shim.inference_encoder,
        )
    array = torch2xp(outputs.detach(), ops=encoder.ops)
    arrays = encoder.ops.xp.split(array, plan.doc_lengths.cumsum()[:-1])

    def backprop(d_arrays: List[Floats2d]) -> List[Doc]:
        if outputs.requires_grad and plan.n_tokens:
            shim.backward(outputs, xp2torch(encoder.ops.xp.concatenate(d_arrays), device=device))
        return []

    return list(arrays), backprop


def encoder_precision(
    encoder: Model, device: Optional[torch.device] = None, *, is_train: bool = False
) -> Precision:
    """How the encoder computes with its settings on ``device`` (default: where its
    weights are)."""
    settings = EncoderSettings.of(encoder)
    device = get_net(encoder).empty.device if device is None else device
    return run_precision(
        settings.mixed_precision, settings.cpu_precision, device, is_train=is_train
    )
