"""A ``ContextNet`` with its tokenizer and channel vocabularies to bytes and back, without
pickle: the HF config and tokenizer files as bytes, the weights as safetensors, so a saved
pipeline loads offline and never runs code from its folder; a part that is missing or
corrupt is named (``saved_parts``)."""

import tempfile
from pathlib import Path
from typing import Dict, Optional

import srsly
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ...channels.base import Channel, channel_states, restore_states
from ...saved_parts import reading
from ...tokenization.encoder_tokenizer import EncoderTokenizer
from ..memory import memory_settings
from .context_net import ContextNet
from .net_loading import LoadedNet, with_attention

# What every saved net holds, since the first release (later keys are optional).
SAVED_KEYS = ("config", "attn_implementation", "tokenizer_files", "head_out", "weights")


def serialize_net(
    net: ContextNet, tokenizer: Optional[EncoderTokenizer], channels: Dict[str, Channel]
) -> bytes:
    """The net, its encoder's tokenizer and its channels' vocabularies as bytes."""
    if net.encoder is None or tokenizer is None:  # never loaded
        raise ValueError("Cannot serialize an encoder that was never initialized or loaded.")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.hf_tokenizer.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    msg = {
        "config": net.encoder.config.to_json_string(),
        "attn_implementation": net.encoder.config._attn_implementation,
        "tokenizer_files": files,
        "head_out": net.head.out_features if net.head is not None else None,
        "memory": net.memory_settings.to_dict() if net.memory_settings else None,
        "weights": save_safetensors(state),
    }
    if net.channel_embeddings is not None:  # only then: an encoder without saves as before
        msg["channel_rows"] = net.channel_embeddings.num_embeddings
        msg["channel_states"] = channel_states(channels)
    return srsly.msgpack_dumps(msg)


def deserialize_net(data: bytes, device: torch.device, channels: Dict[str, Channel]) -> LoadedNet:
    """The net and tokenizer a saved pipeline's bytes hold, the vocabularies of
    ``channels`` restored in place; a ``SavedPartError`` names the part (weights,
    tokenizer files, config, channel vocabularies) that is missing or corrupt."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    with reading("the encoder's serialized state (msgpack)"):
        msg = srsly.msgpack_loads(data)
        missing = [key for key in SAVED_KEYS if key not in msg]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
    # Tensors first, and the serialized weights dropped before the model is built: the
    # weights then exist twice at most, not three times (loading peaked 88 MB lower for
    # a MiniLM pipeline).
    with reading("the encoder's weights (safetensors)"):
        state = load_safetensors(msg.pop("weights"))
    with tempfile.TemporaryDirectory() as tmp:
        with reading("the tokenizer files"):
            _write_files(Path(tmp), msg["tokenizer_files"])
        with reading("the encoder's config (config.json)"):
            (Path(tmp) / "config.json").write_text(msg["config"], encoding="utf8")
            # Never custom code from a saved pipeline, and never a prompt asking to run it.
            config = AutoConfig.from_pretrained(tmp, trust_remote_code=False)
        with reading("the tokenizer files"):
            tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=True, trust_remote_code=False)
    encoder = with_attention(AutoModel.from_config, config, msg["attn_implementation"], {})
    loaded = ContextNet(encoder)
    if msg["head_out"] is not None:
        loaded.set_head(int(msg["head_out"]))
    with reading("the document memory settings"):
        loaded.set_memory(memory_settings(msg.get("memory")))  # absent before memory existed
    restore_states(channels, msg.get("channel_states", {}))  # names each vocabulary
    if msg.get("channel_rows") is not None:
        loaded.set_channel_rows(int(msg["channel_rows"]))
    with reading("the encoder's weights (they do not fit its config)"):
        loaded.load_state_dict(state)
    return LoadedNet(loaded.to(device), EncoderTokenizer(tokenizer))


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
