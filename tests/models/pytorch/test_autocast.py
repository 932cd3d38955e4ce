"""The dtype the encoder runs in: autocast names on CUDA, fp32 on CPU unless cpu_bfloat16,
and a warning where the CPU has no native bf16."""

import warnings

import numpy as np
import pytest
import torch
from util import TRAIN_DATA, encoder_of

from spacy_ctxext.models.pytorch import autocast as precision
from spacy_ctxext.models.pytorch.autocast import (
    CpuBfloat16Warning,
    autocast_dtype,
    cpu_has_native_bf16,
)

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


@pytest.mark.parametrize(
    "name, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16), (None, None)]
)
@pytest.mark.parametrize("cpu_bfloat16", [False, True])
def test_cuda_runs_in_the_configured_autocast_dtype(name, dtype, cpu_bfloat16):
    assert autocast_dtype(name, cpu_bfloat16, CUDA) is dtype  # cpu_bfloat16 is for CPUs only


@pytest.mark.parametrize("name", ["bfloat16", "float16", None])
def test_cpu_runs_in_fp32_by_default(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autocast_dtype(name, False, CPU) is None


def test_cpu_bfloat16_opts_in_to_bfloat16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autocast_dtype(None, True, CPU) is torch.bfloat16
        assert autocast_dtype("float16", True, CPU) is torch.bfloat16


def test_cpu_bfloat16_warns_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(CpuBfloat16Warning, match=r"emulated.*cpu_bfloat16 = false") as caught:
        assert autocast_dtype("bfloat16", True, CPU) is torch.bfloat16
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autocast_dtype("bfloat16", False, CPU) is None  # not asked for: no warning


@pytest.mark.parametrize(
    "machine, checks, native",
    [
        ("aarch64", {}, True),  # ARM: bf16 is not judged here
        ("x86_64", {"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": False}, False),
        ("x86_64", {"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": True}, True),
        ("AMD64", {"_is_avx512_bf16_supported": True, "_is_amx_tile_supported": False}, True),
        ("x86_64", {"_is_avx512_bf16_supported": None, "_is_amx_tile_supported": None}, True),
    ],
    ids=["arm", "x86-none", "x86-amx", "windows-avx512", "old-torch"],
)
def test_native_bf16_is_read_from_torch(monkeypatch, machine, checks, native):
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    for name, supported in checks.items():
        if supported is None:  # torch < 2.2 has no such helper: no warning then
            monkeypatch.delattr(torch.cpu, name, raising=False)
        else:
            monkeypatch.setattr(torch.cpu, name, lambda s=supported: s, raising=False)
    assert cpu_has_native_bf16.__wrapped__() is native  # uncached


def test_cpu_bfloat16_is_opt_in_and_close(trained_nlp, usage_settings, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # no warning here
    model = trained_nlp.get_pipe("ctx_ner").model
    docs = [trained_nlp.make_doc(t) for t, _ in TRAIN_DATA]
    assert encoder_of(trained_nlp).attrs["cpu_bfloat16"] is False  # the default
    fp32 = model.predict(docs)
    usage_settings(cpu_bfloat16=True)
    bf16 = model.predict(docs)
    assert any(not np.array_equal(a, b) for a, b in zip(fp32, bf16))
    for a, b in zip(fp32, bf16):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=0.1 * float(np.abs(a).max()))
