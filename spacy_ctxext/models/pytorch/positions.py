"""Extend an encoder's position range beyond what it was pretrained on.

Absolute position tables are grown in place, either by tiling the pretrained rows
(Longformer's "copy" initialisation) or by linear interpolation. Rotary encoders
need no new weights: HF's ``rope_scaling`` (linear, dynamic/NTK, YaRN) is set on
their config before the model is built.
"""

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # transformers loads only when an encoder is built
    from transformers.modeling_utils import PreTrainedModel

# The window a rotary encoder is extended to, kept apart from its config's
# ``max_position_embeddings``: HF's dynamic and YaRN scaling read that as the pretrained
# length, when the model is built and again when a saved config is loaded.
ROTARY_POSITIONS = "ctxext_max_positions"


def find_position_embeddings(model: torch.nn.Module):
    """The module holding an absolute ``position_embeddings`` table, or None (RoPE)."""
    for module in model.modules():
        table = getattr(module, "position_embeddings", None)
        if isinstance(table, torch.nn.Embedding):
            return module
    return None


def position_offset(embeddings_module) -> int:
    """Rows before the first real position (RoBERTa-style models start at padding_idx + 1)."""
    padding_idx = getattr(embeddings_module, "padding_idx", None)
    return 0 if padding_idx is None else int(padding_idx) + 1


def usable_positions(model: "PreTrainedModel") -> int:
    """How many wordpieces (special tokens included) one window may hold."""
    module = find_position_embeddings(model)
    if module is None:
        extended = getattr(model.config, ROTARY_POSITIONS, None)
        return int(extended or model.config.max_position_embeddings)
    return module.position_embeddings.num_embeddings - position_offset(module)


def extend_position_embeddings(model: "PreTrainedModel", target: int, method: str) -> None:
    """Grow the absolute position table of ``model`` to ``target`` rows, in place."""
    module = find_position_embeddings(model)
    if module is None:
        # Rotary encoders have no table: rope_scaling, set before the model is built,
        # decides how positions beyond the pretrained range are read.
        setattr(model.config, ROTARY_POSITIONS, target)
        return
    old = module.position_embeddings.weight.data
    if target <= old.shape[0]:
        return
    if method == "none":
        raise ValueError(
            f"max_position_embeddings={target} exceeds the encoder's {old.shape[0]} positions "
            "and position_extension is 'none': set position_extension to 'copy' or "
            "'interpolate', or lower max_position_embeddings."
        )
    offset = position_offset(module)
    grown = _grow_table(old[offset:], target - offset, method)
    table = torch.nn.Embedding(
        target, old.shape[1], padding_idx=module.position_embeddings.padding_idx
    )
    table.weight.data = torch.cat([old[:offset], grown]).to(old.dtype)
    module.position_embeddings = table.to(old.device)
    _grow_index_buffers(module, old.shape[0], target)
    model.config.max_position_embeddings = target


def _grow_table(rows: torch.Tensor, size: int, method: str) -> torch.Tensor:
    if method == "copy":
        repeats = -(-size // rows.shape[0])
        return rows.repeat(repeats, 1)[:size].clone()
    # Linear interpolation along the position axis keeps the pretrained rows' ends fixed.
    stretched = torch.nn.functional.interpolate(
        rows.float().T.unsqueeze(0), size=size, mode="linear", align_corners=True
    )
    return stretched.squeeze(0).T.contiguous()


def _grow_index_buffers(module: torch.nn.Module, old_size: int, target: int) -> None:
    """Rebuild buffers sized by the old table (``position_ids``, ``token_type_ids``)."""
    for name, buffer in list(module.named_buffers(recurse=False)):
        if buffer is None or buffer.shape[-1] != old_size:
            continue
        persistent = name not in module._non_persistent_buffers_set
        if name == "position_ids":
            new = torch.arange(target, device=buffer.device).expand((1, -1))
        else:
            new = torch.zeros((1, target), dtype=buffer.dtype, device=buffer.device)
        module.register_buffer(name, new, persistent=persistent)
