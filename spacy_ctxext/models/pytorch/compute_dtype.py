"""Which precision the encoder computes in: autocast on GPU, ``cpu_precision`` on CPU, and
what ``"auto"`` picks for this CPU."""

import logging
import os
import platform
import warnings
from functools import cache, lru_cache
from typing import NamedTuple, Optional, Tuple

import torch

from .quantization import int8_matmul_error

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
# Forces what "auto" picks ("fp32", "bf16" or "int8"): to measure on one machine what
# users of another kind of CPU get.
AUTO_ENV = "SPACY_CTXEXT_AUTO_CPU_PRECISION"

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
BF16 = Precision("bf16", torch.bfloat16)
INT8 = Precision("int8", None, int8=True)
BY_NAME = {"fp32": FP32, "bf16": BF16, "int8": INT8}


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
        if is_train:  # "auto" speeds up use; training stays as it was
            return FP32
        chosen, reason = auto_cpu_precision()
        _log_auto_choice(chosen, reason)
        return BY_NAME[chosen]
    if cpu_precision == "bf16":
        if not has_amx() and platform_is_x86():
            warnings.warn(
                "cpu_precision is bf16, but this CPU has no AMX: bfloat16 then runs slower "
                'than fp32. Set cpu_precision = "auto" in [components.ctx_ner.model.encoder] '
                "(predictions also differ slightly from fp32).",
                CpuBfloat16Warning,
                stacklevel=3,
            )
        return BF16
    if cpu_precision == "int8" and not is_train:
        return INT8
    return FP32


def auto_cpu_precision() -> Tuple[str, str]:
    """What "auto" runs at inference on this CPU, and why.

    bf16 where the CPU has AMX; else int8 on an x86 CPU with VNNI whose int8 product
    is exact; else fp32. Measured (docs/benchmark.md): without AMX, bf16 ran ctx_ner at
    0.59x fp32's words/s and int8 at 1.09-1.33x, entity F1 within 0.02 of fp32.
    """
    forced = os.environ.get(AUTO_ENV, "")
    if forced:
        if forced not in BY_NAME:
            raise ValueError(f"{AUTO_ENV} must be one of {list(BY_NAME)}, got {forced!r}.")
        return forced, f"{AUTO_ENV}={forced}"
    return _detected_choice()


@lru_cache(maxsize=1)
def _detected_choice() -> Tuple[str, str]:
    if has_amx():
        return "bf16", "this CPU has AMX"
    if platform_is_x86() and _torch_cpu_check("_is_vnni_supported"):
        error = int8_matmul_error()
        if error is None:
            return "int8", "this CPU has VNNI but no AMX"
        return "fp32", f"no AMX, and int8 products are not available ({error})"
    return "fp32", "this CPU has neither AMX nor VNNI"


@cache
def _log_auto_choice(chosen: str, reason: str) -> None:
    # Once a process: the choice depends on the machine alone.
    logger.info(
        'ctx_ner: cpu_precision "auto" runs the encoder in %s at inference (%s); set '
        'cpu_precision = "fp32" for exact fp32 predictions.',
        chosen,
        reason,
    )


def platform_is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def has_amx() -> bool:
    """Whether this is an x86 CPU with AMX tiles (torch >= 2.2 can tell)."""
    return platform_is_x86() and _torch_cpu_check("_is_amx_tile_supported")


def _torch_cpu_check(name: str) -> bool:
    check = getattr(torch.cpu, name, None)  # private torch helpers: absent before 2.2
    return bool(check is not None and check())
