"""Registered thinc architectures: the context-extended encoder and the token classifier."""

from inspect import Parameter, Signature, signature
from typing import Any, Callable, Dict, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, PyTorchShim
from thinc.types import Floats2d

from ..channels.base import named_channels
from .encoder_layer import classifier_forward, classifier_init, encoder_forward, encoder_init
from .memory import MemorySettings
from .pytorch.context_net import ContextNet
from .pytorch.net_serialization import deserialize_net, serialize_net
from .settings import CLASSIFIER_NAME, EncoderSettings, legacy_cpu_precision

__all__ = [
    "build_context_extended_transformer",
    "build_context_extended_transformer_v2",
    "build_context_extended_transformer_v3",
    "build_token_classifier",
    "build_token_classifier_v2",
]


DEFAULTS = EncoderSettings()


@registry.architectures("spacy-ctxext.ContextExtendedTransformer.v4")
def build_context_extended_transformer_v4(
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
    cpu_precision: str = DEFAULTS.cpu_precision,
    attn_implementation: str = DEFAULTS.attn_implementation,
    trust_remote_code: bool = DEFAULTS.trust_remote_code,
    retrieved_passages: int = DEFAULTS.retrieved_passages,
    passage_pieces: int = DEFAULTS.passage_pieces,
    # Any, not Channel: confection validates the unresolved blocks of a dict argument
    # against its value type; each value is checked to be a Channel at initialize.
    channels: Optional[Dict[str, Any]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Any HF encoder over context windows, one output vector per spaCy token.

    The settings are ``EncoderSettings``' (documented there and in docs/configuration.md),
    plus channels by name (config blocks such as ``@misc = "spacy-ctxext.casing.v1"``, see
    ``channels``) whose embeddings are added to every wordpiece of their token before the
    first layer.
    """
    arguments = dict(locals())  # the settings' fields, by the same names, and channels
    channels = arguments.pop("channels")
    settings = EncoderSettings(**arguments)
    net = ContextNet(channels=named_channels(channels))
    shim = PyTorchShim(net, serialize_model=serialize_net, deserialize_model=deserialize_net)
    return Model(
        "ctxext.encoder",
        encoder_forward,
        init=encoder_init,
        shims=[shim],
        dims={"nO": None},
        attrs=settings.to_attrs(),
    )


def build_context_extended_transformer_v3(
    features: Optional[Dict[str, Any]] = None, **settings: Any
) -> Model[List[Doc], List[Floats2d]]:
    """v4 with its channels under the name ``features``."""
    return build_context_extended_transformer_v4(channels=features, **settings)


def build_context_extended_transformer_v2(
    cpu_bfloat16: bool = False, cpu_quantize: Optional[str] = None, **settings: Any
) -> Model[List[Doc], List[Floats2d]]:
    """v3 with the CPU precision as two flags, fp32 unless one is set: ``cpu_bfloat16``
    (bf16 autocast on CPU) or ``cpu_quantize = "int8"``."""
    precision = legacy_cpu_precision(cpu_bfloat16, cpu_quantize)
    return build_context_extended_transformer_v3(cpu_precision=precision, **settings)


def build_context_extended_transformer(**settings: Any) -> Model[List[Doc], List[Floats2d]]:
    """v2 without ``features`` (the settings are v2's, documented there)."""
    return build_context_extended_transformer_v2(**settings)


def _signature_without(function: Callable, drop: str, *added: Parameter) -> Signature:
    """``function``'s signature with ``added`` in place of the parameter ``drop``."""
    params: List[Parameter] = []
    for param in signature(function).parameters.values():
        params.extend(added if param.name == drop else [param])
    return signature(function).replace(parameters=params)


# confection fills and checks a config block from its function's signature, and v1-v3
# take v4's parameters but one or two. A wrapper's ``**settings`` would let confection
# accept any key and fill no defaults, and confection reads no other declaration of a
# block's parameters, so each older version states v4's signature with its own change:
# derived from v4's, the lists cannot drift.
_LEGACY_PRECISION = [
    Parameter(name, Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)
    for name, default, annotation in (
        ("cpu_bfloat16", False, bool),
        ("cpu_quantize", None, Optional[str]),
    )
]
_FEATURES = Parameter(
    "features", Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=Optional[Dict[str, Any]]
)
build_context_extended_transformer_v3.__signature__ = _signature_without(  # type: ignore[attr-defined]
    build_context_extended_transformer_v4, "channels", _FEATURES
)
build_context_extended_transformer_v2.__signature__ = _signature_without(  # type: ignore[attr-defined]
    build_context_extended_transformer_v3, "cpu_precision", *_LEGACY_PRECISION
)
build_context_extended_transformer.__signature__ = _signature_without(  # type: ignore[attr-defined]
    build_context_extended_transformer_v2, "features"
)
registry.architectures("spacy-ctxext.ContextExtendedTransformer.v3")(
    build_context_extended_transformer_v3
)
registry.architectures("spacy-ctxext.ContextExtendedTransformer.v2")(
    build_context_extended_transformer_v2
)
registry.architectures("spacy-ctxext.ContextExtendedTransformer.v1")(
    build_context_extended_transformer
)


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
        CLASSIFIER_NAME,
        classifier_forward,
        init=classifier_init,
        layers=[encoder],
        dims={"nO": nO},
        attrs={"memory": memory.to_dict() if memory else None},
    )
