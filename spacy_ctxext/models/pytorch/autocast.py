"""Which dtype the encoder runs in: autocast on GPU, opt-in bfloat16 on CPU."""

import platform
import warnings
from functools import lru_cache
from typing import Optional

import torch

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


# Private torch helpers (torch >= 2.2); without them no warning is given.
CPU_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


class CpuBfloat16Warning(UserWarning):
    """cpu_bfloat16 is set on an x86 CPU that has no native bf16 arithmetic."""


def autocast_dtype(
    mixed_precision: Optional[str], cpu_bfloat16: bool, device: torch.device
) -> Optional[torch.dtype]:
    """The dtype the encoder runs in on ``device`` (None: fp32).

    mixed_precision: the autocast dtype's name on GPU (None: fp32 there too).
    cpu_bfloat16: autocast to bfloat16 on CPU as well.
    """
    if device.type == "cuda":
        return AUTOCAST_DTYPES.get(mixed_precision) if mixed_precision else None
    if not cpu_bfloat16:
        return None
    if not cpu_has_native_bf16():
        warnings.warn(
            "cpu_bfloat16 is set, but this CPU has neither avx512_bf16 nor AMX: bfloat16 "
            "then runs emulated, usually slower than fp32. Set cpu_bfloat16 = false in "
            "[components.ctx_ner.model.encoder] (predictions also differ slightly from fp32).",
            CpuBfloat16Warning,
            stacklevel=2,
        )
    return torch.bfloat16


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether an x86 CPU has avx512_bf16 or AMX (True elsewhere, or where torch can't tell)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return True
    found = [getattr(torch.cpu, name, None) for name in CPU_BF16_CHECKS]
    checks = [check for check in found if check is not None]
    return not checks or any(check() for check in checks)
