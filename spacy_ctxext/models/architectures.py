"""Registered thinc architectures: the context-extended encoder and the token classifier."""

from typing import Any, Dict, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

from ..channels.base import named_channels
from .encoder_layer import classifier_forward, classifier_init, encoder_forward, encoder_init
from .encoder_shim import ContextNetShim
from .memory import MemorySettings
from .settings import CLASSIFIER_NAME, EncoderSettings

__all__ = ["build_context_extended_transformer", "build_token_classifier"]


DEFAULTS = EncoderSettings()


@registry.architectures("spacy-ctxext.ContextExtendedTransformer.v4")
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
    # float16 gradients underflow without loss scaling; bfloat16 has fp32's range.
    loss_scaling = settings.mixed_precision == "float16"
    shim = ContextNetShim(named_channels(channels), loss_scaling=loss_scaling)
    return Model(
        "ctxext.encoder",
        encoder_forward,
        init=encoder_init,
        shims=[shim],
        dims={"nO": None},
        attrs=settings.to_attrs(),
    )


@registry.architectures("spacy-ctxext.TokenClassifier.v1")
def build_token_classifier(
    encoder: Model[List[Doc], List[Floats2d]],
    memory: Optional[MemorySettings] = None,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """The encoder with a linear head: one row of tag logits per spaCy token, after an
    optional document memory (``spacy-ctxext.DocumentMemory.v1``) that every token reads.

    The head runs inside the encoder's torch loop, so only the logits (not the
    hidden vectors) of a batch ever leave the device.
    """
    return Model(
        CLASSIFIER_NAME,
        classifier_forward,
        init=classifier_init,
        layers=[encoder],
        dims={"nO": nO},
        attrs={"memory": memory.to_dict() if memory else None},
    )
