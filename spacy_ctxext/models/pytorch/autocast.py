"""Which precision the encoder computes in: autocast on GPU, ``cpu_precision`` on CPU."""

import logging
import os
import platform
import warnings
from functools import cache, lru_cache
from typing import NamedTuple, Optional

import torch

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}

# Private torch helpers (torch >= 2.2), each with the CPU feature it detects. Only AMX
# makes bf16 pay: on a Xeon whose VM hides AMX but has avx512_bf16, bf16 ran ctx_ner at
# 0.59x fp32's words/s (a 384 x 1,536 Linear: 35 ms bf16, 24 ms fp32; docs/benchmark.md).
CPU_BF16_CHECKS = {"_is_amx_tile_supported": "AMX", "_is_avx512_bf16_supported": "avx512_bf16"}
FAST_BF16_FEATURES = ("AMX",)
# Set to 1 to have "auto" treat this CPU as one without native bf16 (e.g. to measure
# what a user on such a CPU gets, on one that has it).
NO_NATIVE_BF16_ENV = "SPACY_CTXEXT_NO_NATIVE_BF16"

logger = logging.getLogger("spacy_ctxext")


class CpuBfloat16Warning(UserWarning):
    """bf16 is asked for on an x86 CPU without AMX, where it is slower than fp32."""


class Precision(NamedTuple):
    """How one encoder call computes: its name ("fp32", "bf16", "float16", "int8"),
    the autocast dtype (None: none) and whether the int8 copy of the encoder runs."""

    name: str
    autocast: Optional[torch.dtype]
    int8: bool = False


FP32 = Precision("fp32", None)


def run_precision(
    mixed_precision: Optional[str], cpu_precision: str, device: torch.device, *, is_train: bool
) -> Precision:
    """The precision of an encoder call on ``device``.

    mixed_precision: the autocast dtype's name on GPU (None: fp32 there).
    cpu_precision: "auto", "fp32", "bf16" or "int8" (``EncoderSettings.cpu_precision``).
    """
    if device.type == "cuda":
        dtype = AUTOCAST_DTYPES.get(mixed_precision or "")
        return FP32 if dtype is None else Precision(str(mixed_precision), dtype)
    if cpu_precision == "auto":
        feature = native_bf16_feature()
        if is_train or feature not in FAST_BF16_FEATURES:  # "auto" speeds up use, only
            return FP32
        _log_auto_choice(feature)
        return Precision("bf16", torch.bfloat16)
    if cpu_precision == "bf16":
        feature = native_bf16_feature()
        if feature not in FAST_BF16_FEATURES and platform_is_x86():
            has = f"has {feature} but no AMX" if feature else "has neither avx512_bf16 nor AMX"
            warnings.warn(
                f"cpu_precision is bf16, but this CPU {has}: bfloat16 then runs slower "
                'than fp32. Set cpu_precision = "auto" in [components.ctx_ner.model.encoder] '
                "(predictions also differ slightly from fp32).",
                CpuBfloat16Warning,
                stacklevel=3,
            )
        return Precision("bf16", torch.bfloat16)
    if cpu_precision == "int8" and not is_train:
        return Precision("int8", None, int8=True)
    return FP32


@cache
def _log_auto_choice(feature: str) -> None:
    # Once a process: the choice depends on the machine alone.
    logger.info(
        'ctx_ner: cpu_precision "auto" runs the encoder in bfloat16 at inference (this '
        'CPU has %s); set cpu_precision = "fp32" for exact fp32 predictions.',
        feature,
    )


def platform_is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


@lru_cache(maxsize=1)
def _detected_bf16_feature() -> Optional[str]:
    if not platform_is_x86():  # torch's checks are x86 only
        return None
    for check, feature in CPU_BF16_CHECKS.items():
        detect = getattr(torch.cpu, check, None)
        if detect is not None and detect():
            return feature
    return None


def native_bf16_feature() -> Optional[str]:
    """ "AMX" or "avx512_bf16" where this x86 CPU has it (None elsewhere, where torch
    cannot tell, or with ``SPACY_CTXEXT_NO_NATIVE_BF16=1``)."""
    if os.environ.get(NO_NATIVE_BF16_ENV, "") not in ("", "0"):
        return None
    return _detected_bf16_feature()
