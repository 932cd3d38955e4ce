"""How the encoder computes: autocast names on CUDA; on CPU ``cpu_precision`` — auto picks
bf16 at inference where the CPU has it natively, fp32 elsewhere and in training."""

import logging
import warnings

import numpy as np
import pytest
import torch
from util import TRAIN_DATA, encoder_of

from spacy_ctxext.models.encoder_layer import encoder_precision
from spacy_ctxext.models.pytorch import autocast as precision
from spacy_ctxext.models.pytorch.autocast import (
    NO_NATIVE_BF16_ENV,
    CpuBfloat16Warning,
    native_bf16_feature,
    run_precision,
)

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


@pytest.fixture
def cpu_feature(monkeypatch):
    """Pretend this CPU has the given native bf16 feature (None: none)."""
    return lambda feature: monkeypatch.setattr(precision, "native_bf16_feature", lambda: feature)


@pytest.mark.parametrize(
    "name, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16), (None, None)]
)
@pytest.mark.parametrize("cpu_precision", ["auto", "fp32", "bf16", "int8"])
def test_cuda_runs_in_the_configured_autocast_dtype(name, dtype, cpu_precision):
    chosen = run_precision(name, cpu_precision, CUDA, is_train=False)
    assert chosen.autocast is dtype and not chosen.int8  # cpu_precision is for CPUs only
    assert chosen.name == (name or "fp32")


@pytest.mark.parametrize("feature", ["AMX"])
def test_auto_is_bf16_at_inference_on_a_cpu_with_amx(cpu_feature, feature, caplog):
    cpu_feature(feature)
    precision._log_auto_choice.cache_clear()
    with caplog.at_level(logging.INFO, logger="spacy_ctxext"):
        for _ in range(3):
            chosen = run_precision("float16", "auto", CPU, is_train=False)
            assert chosen == ("bf16", torch.bfloat16, False)
    logged = [r.getMessage() for r in caplog.records if r.name == "spacy_ctxext"]
    assert len(logged) == 1 and feature in logged[0] and 'cpu_precision = "fp32"' in logged[0]


@pytest.mark.parametrize("feature", ["AMX", None])
def test_auto_trains_in_fp32(cpu_feature, feature):
    cpu_feature(feature)
    assert run_precision("bfloat16", "auto", CPU, is_train=True) == precision.FP32


@pytest.mark.parametrize("feature", ["avx512_bf16", None])
def test_auto_is_fp32_on_a_cpu_without_amx(cpu_feature, feature):
    """avx512_bf16 without AMX ran bf16 slower than fp32 (docs/benchmark.md)."""
    cpu_feature(feature)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_precision("bfloat16", "auto", CPU, is_train=False) == precision.FP32


@pytest.mark.parametrize("is_train", [False, True])
def test_explicit_cpu_precisions(cpu_feature, is_train):
    cpu_feature("AMX")
    assert run_precision(None, "fp32", CPU, is_train=is_train) == precision.FP32
    # bf16 autocasts in training too (as v1/v2's cpu_bfloat16 did); int8 is inference only.
    assert run_precision(None, "bf16", CPU, is_train=is_train).autocast is torch.bfloat16
    assert run_precision(None, "int8", CPU, is_train=is_train).int8 is not is_train


@pytest.mark.parametrize("feature", ["avx512_bf16", None])
def test_bf16_warns_on_an_x86_cpu_without_amx(cpu_feature, monkeypatch, feature):
    cpu_feature(feature)
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    with pytest.warns(CpuBfloat16Warning, match=r"no.*AMX.*slower than fp32") as caught:
        assert run_precision(None, "bf16", CPU, is_train=False).autocast is torch.bfloat16
    assert len(caught) == 1


@pytest.mark.parametrize(
    "machine, checks, feature",
    [
        ("aarch64", {}, None),  # ARM: torch has no check; auto stays fp32
        ("x86_64", {"_is_avx512_bf16_supported": False, "_is_amx_tile_supported": False}, None),
        ("x86_64", {"_is_avx512_bf16_supported": True, "_is_amx_tile_supported": True}, "AMX"),
        (
            "AMD64",
            {"_is_avx512_bf16_supported": True, "_is_amx_tile_supported": False},
            "avx512_bf16",
        ),
        ("x86_64", {"_is_avx512_bf16_supported": None, "_is_amx_tile_supported": None}, None),
    ],
    ids=["arm", "x86-none", "x86-amx", "windows-avx512", "old-torch"],
)
def test_native_bf16_is_read_from_torch(monkeypatch, machine, checks, feature):
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    for name, supported in checks.items():
        if supported is None:  # torch < 2.2 has no such helper
            monkeypatch.delattr(torch.cpu, name, raising=False)
        else:
            monkeypatch.setattr(torch.cpu, name, lambda s=supported: s, raising=False)
    assert precision._detected_bf16_feature.__wrapped__() == feature  # uncached


def test_the_environment_can_hide_native_bf16(monkeypatch):
    monkeypatch.setattr(precision, "_detected_bf16_feature", lambda: "AMX")
    assert native_bf16_feature() == "AMX"
    monkeypatch.setenv(NO_NATIVE_BF16_ENV, "1")
    assert native_bf16_feature() is None
    assert run_precision(None, "auto", CPU, is_train=False) == precision.FP32


def test_bf16_predictions_are_close_to_fp32(trained_nlp, usage_settings, cpu_feature):
    cpu_feature("AMX")  # no warning on a CPU without it
    model = trained_nlp.get_pipe("ctx_ner").model
    docs = [trained_nlp.make_doc(t) for t, _ in TRAIN_DATA]
    assert encoder_of(trained_nlp).attrs["cpu_precision"] == "fp32"  # a v1 config's
    fp32 = model.predict(docs)
    usage_settings(cpu_precision="auto")
    assert encoder_precision(encoder_of(trained_nlp), CPU).name == "bf16"
    bf16 = model.predict(docs)
    assert any(not np.array_equal(a, b) for a, b in zip(fp32, bf16))
    for a, b in zip(fp32, bf16):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=0.1 * float(np.abs(a).max()))
