"""Build a ``ContextNet`` from a pretrained HF encoder: its name resolved to a folder, its
positions extended, its attention implementation with a fallback (saved nets are read back
by ``net_serialization``)."""

import importlib
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, NamedTuple

from ...tokenization.encoder_tokenizer import EncoderTokenizer
from ..settings import EncoderSettings
from .context_net import ContextNet
from .positions import extend_position_embeddings

# Names HF configs use for dropout on attention probabilities.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def resolve_encoder_name(name: str) -> str:
    """A local folder, an installed model package (``get_model_path()``), or a hub name."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    module_name = name.replace("-", "_")
    if module_name.isidentifier() and importlib.util.find_spec(module_name) is not None:
        module = importlib.import_module(module_name)
        if hasattr(module, "get_model_path"):
            return str(module.get_model_path())
    return name


class LoadedNet(NamedTuple):
    """A net as built or read back, with the tokenizer of its encoder."""

    net: ContextNet
    tokenizer: EncoderTokenizer


def load_pretrained(settings: EncoderSettings) -> LoadedNet:
    """The pretrained encoder and tokenizer ``settings.name`` names, built as configured:
    attention implementation and dropout, position range extended or rope-scaled."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_encoder_name(settings.name)
    trust = settings.trust_remote_code
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust)
    positions = settings.max_position_embeddings
    if settings.rope_scaling is not None:
        set_rope_scaling(config, settings.rope_scaling)
        if "original_max_position_embeddings" in settings.rope_scaling and positions:
            # HF's YaRN then scales by max_position_embeddings / original: set it before
            # the model is built, so that building and loading agree.
            config.max_position_embeddings = positions
    if settings.attention_dropout is not None:
        for key in ATTENTION_DROPOUT_KEYS:
            if hasattr(config, key):
                setattr(config, key, settings.attention_dropout)
    kwargs = dict(config=config, trust_remote_code=trust)
    encoder = with_attention(AutoModel.from_pretrained, path, settings.attn_implementation, kwargs)
    if positions:
        extend_position_embeddings(encoder, positions, settings.position_extension)
    tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=trust)
    return LoadedNet(ContextNet(encoder), EncoderTokenizer(tokenizer))


def set_rope_scaling(config: Any, scaling: Dict[str, Any]) -> None:
    """Give ``config`` the rotary scaling ``scaling`` (HF's ``rope_scaling`` dict).

    transformers 4 reads ``config.rope_scaling``. transformers 5 reads
    ``config.rope_parameters``, which also holds ``rope_theta`` (and, for encoders with
    local and global layers such as ModernBERT, one such dict per layer type): the scaling
    is merged into each, keeping its theta, since assigning ``rope_scaling`` there would
    replace the theta with None.
    """
    parameters = getattr(config, "rope_parameters", None)
    if not isinstance(parameters, dict):
        config.rope_scaling = dict(scaling)
        return
    if parameters and all(isinstance(value, dict) for value in parameters.values()):
        config.rope_parameters = {
            layer_type: {**layer_parameters, **scaling}
            for layer_type, layer_parameters in parameters.items()
        }
    else:
        config.rope_parameters = {**parameters, **scaling}


def with_attention(
    build: Callable[..., Any], source: Any, attn_implementation: str, kwargs: Dict[str, Any]
) -> Any:
    try:
        return build(source, attn_implementation=attn_implementation, **kwargs)
    except (ValueError, ImportError) as err:
        # Only errors about the attention implementation fall back (e.g. a bad
        # rope_scaling is a ValueError too, and eager would not fix it).
        if attn_implementation == "eager" or not _about_attention(err, attn_implementation):
            raise
        warnings.warn(
            f"attn_implementation={attn_implementation!r} unavailable ({err}); using eager.",
            stacklevel=2,
        )
        return build(source, attn_implementation="eager", **kwargs)


def _about_attention(err: Exception, attn_implementation: str) -> bool:
    """Whether HF refused the attention implementation (its messages name it)."""
    message = str(err).lower()
    names = ("attn_implementation", "scaled_dot_product_attention", "flash", "sdpa")
    return attn_implementation.lower() in message or any(name in message for name in names)
