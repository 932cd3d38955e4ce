"""The torch side: a HF encoder, its tokenizer, and an optional tag head, as one module.

Serialized without pickle: the HF config and tokenizer files as bytes, the weights as
safetensors, so a saved pipeline loads offline and never runs code from its folder.
"""

import importlib
import importlib.util
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import srsly
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .positions import extend_position_embeddings
from .wordpieces import load_backend, special_tokens

# Names HF configs use for dropout on attention probabilities.
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


class ContextNet(torch.nn.Module):
    """Encoder + learned vector for tokens without wordpieces + optional linear head."""

    def __init__(self, encoder=None, tokenizer=None):
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        width = encoder.config.hidden_size if encoder is not None else 0
        # Tokens the tokenizer drops (spaCy whitespace, U+200B, ...) still need a vector.
        self.empty = torch.nn.Parameter(torch.zeros(width))
        self.head: Optional[torch.nn.Linear] = None
        self._backend = None
        self._specials: Optional[Tuple[List[int], List[int]]] = None

    @property
    def backend(self):
        """The Rust tokenizer without truncation, copied once per loaded net."""
        if self._backend is None:
            self._backend = load_backend(self.tokenizer)
        return self._backend

    @property
    def specials(self) -> Tuple[List[int], List[int]]:
        """The special token ids before and after each window, read once per loaded net."""
        if self._specials is None:
            self._specials = special_tokens(self.backend)
        return self._specials

    @property
    def is_loaded(self) -> bool:
        return self.encoder is not None

    @property
    def width(self) -> int:
        return int(self.empty.shape[0])

    def set_head(self, n_out: int) -> None:
        if self.head is None or self.head.out_features != n_out:
            self.head = torch.nn.Linear(self.width, n_out).to(self.empty.device)

    def forward(self, input_ids, attention_mask, rows, cols, use_head: bool):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        vectors = hidden[rows, cols].float()
        return self.head(vectors) if use_head else vectors

    def empty_output(self, use_head: bool) -> torch.Tensor:
        return self.head(self.empty) if use_head else self.empty


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


def load_pretrained(
    name: str,
    *,
    max_position_embeddings: Optional[int],
    position_extension: str,
    rope_scaling: Optional[dict],
    attn_implementation: str,
    trust_remote_code: bool,
    attention_dropout: Optional[float] = None,
) -> ContextNet:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_encoder_name(name)
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    if rope_scaling is not None:
        config.rope_scaling = dict(rope_scaling)
        if "original_max_position_embeddings" in rope_scaling and max_position_embeddings:
            # HF's YaRN then scales by max_position_embeddings / original: set it before
            # the model is built, so that building and loading agree.
            config.max_position_embeddings = max_position_embeddings
    if attention_dropout is not None:
        for key in ATTENTION_DROPOUT_KEYS:
            if hasattr(config, key):
                setattr(config, key, attention_dropout)
    kwargs = dict(config=config, trust_remote_code=trust_remote_code)
    encoder = _with_attention(AutoModel.from_pretrained, path, attn_implementation, kwargs)
    if max_position_embeddings:
        extend_position_embeddings(encoder, max_position_embeddings, position_extension)
    tokenizer = AutoTokenizer.from_pretrained(
        path, use_fast=True, trust_remote_code=trust_remote_code
    )
    return ContextNet(encoder, tokenizer)


def _with_attention(build, source, attn_implementation: str, kwargs: dict):
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


def serialize_net(net: ContextNet) -> bytes:
    if not net.is_loaded:
        raise ValueError("Cannot serialize an encoder that was never initialized or loaded.")
    with tempfile.TemporaryDirectory() as tmp:
        net.tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    msg = {
        "config": net.encoder.config.to_json_string(),
        "attn_implementation": net.encoder.config._attn_implementation,
        "tokenizer_files": files,
        "head_out": net.head.out_features if net.head is not None else None,
        "weights": save_safetensors(state),
    }
    return srsly.msgpack_dumps(msg)


def deserialize_net(net: ContextNet, data: bytes, device) -> ContextNet:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    msg = srsly.msgpack_loads(data)
    # Tensors first, and the serialized weights dropped before the model is built: the
    # weights then exist twice at most, not three times (loading peaked 88 MB lower for
    # a MiniLM pipeline).
    state = load_safetensors(msg.pop("weights"))
    with tempfile.TemporaryDirectory() as tmp:
        _write_files(Path(tmp), msg["tokenizer_files"])
        (Path(tmp) / "config.json").write_text(msg["config"], encoding="utf8")
        # Never custom code from a saved pipeline, and never a prompt asking to run it.
        config = AutoConfig.from_pretrained(tmp, trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True, trust_remote_code=False)
    encoder = _with_attention(AutoModel.from_config, config, msg["attn_implementation"], {})
    loaded = ContextNet(encoder, tokenizer)
    if msg["head_out"] is not None:
        loaded.set_head(int(msg["head_out"]))
    loaded.load_state_dict(state)
    return loaded.to(device)


def _write_files(folder: Path, files: Dict[str, bytes]) -> None:
    for filename, content in files.items():
        if Path(filename).name != filename:
            raise ValueError(f"Refusing tokenizer file name {filename!r} with a path in it.")
        if Path(filename).suffix == ".py":
            raise ValueError(
                f"Refusing {filename!r}: a saved ctx_ner never carries custom code, and "
                "loading one does not run any. Re-save the pipeline from a trusted source."
            )
        (folder / filename).write_bytes(content)
