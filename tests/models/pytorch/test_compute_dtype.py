"""How the encoder computes: autocast names on CUDA; on CPU ``cpu_precision``, whose "auto"
picks bf16 at inference on CPUs with AMX, int8 on x86 with VNNI, else fp32, and fp32 in
training."""

import logging
import warnings

import numpy as np
import pytest
import torch
from util import TRAIN_DATA, encoder_of

from spacy_ctxext.models.encoder_layer import encoder_precision
from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.models.pytorch import compute_dtype
from spacy_ctxext.models.pytorch.compute_dtype import (
    AUTO_ENV,
    BF16,
    FP32,
    INT8,
    CpuBfloat16Warning,
    auto_cpu_precision,
    run_precision,
)

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


@pytest.fixture
def cpu_checks(monkeypatch):
    """Pretend this is an x86 CPU whose torch checks answer as given (others: False),
    with exact int8 products."""

    def pretend(**answers):
        monkeypatch.setattr(compute_dtype.platform, "machine", lambda: "x86_64")
        monkeypatch.setattr(compute_dtype, "int8_matmul_error", lambda: None)
        monkeypatch.setattr(
            compute_dtype, "_torch_cpu_check", lambda name: answers.get(name, False)
        )
        compute_dtype._detected_choice.cache_clear()

    yield pretend
    compute_dtype._detected_choice.cache_clear()


@pytest.mark.parametrize(
    "name, dtype", [("bfloat16", torch.bfloat16), ("float16", torch.float16), (None, None)]
)
@pytest.mark.parametrize("cpu_precision", ["auto", "fp32", "bf16", "int8"])
def test_cuda_runs_in_the_configured_autocast_dtype(name, dtype, cpu_precision):
    chosen = run_precision(name, cpu_precision, CUDA, is_train=False)
    assert chosen.autocast is dtype and not chosen.int8  # cpu_precision is for CPUs only
    assert chosen.name == (name or "fp32")


@pytest.mark.parametrize(
    "checks, chosen",
    [
        ({"_is_amx_tile_supported": True, "_is_vnni_supported": True}, BF16),
        ({"_is_avx512_bf16_supported": True, "_is_vnni_supported": True}, INT8),
        ({"_is_avx512_bf16_supported": True}, FP32),  # bf16 without AMX: slower than fp32
        ({}, FP32),
    ],
    ids=["amx", "vnni-no-amx", "avx512-bf16-only", "none"],
)
def test_auto_at_inference_follows_the_cpu(cpu_checks, checks, chosen):
    cpu_checks(**checks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_precision("bfloat16", "auto", CPU, is_train=False) == chosen
        assert run_precision("bfloat16", "auto", CPU, is_train=True) == FP32  # training


def test_auto_is_fp32_where_int8_products_fail(cpu_checks, monkeypatch):
    cpu_checks(_is_vnni_supported=True)
    monkeypatch.setattr(compute_dtype, "int8_matmul_error", lambda: "no int8 GEMM")
    assert auto_cpu_precision() == (
        "fp32",
        "no AMX, and int8 products are not available (no int8 GEMM)",
    )


def test_auto_is_fp32_off_x86(monkeypatch):
    monkeypatch.setattr(compute_dtype.platform, "machine", lambda: "aarch64")
    compute_dtype._detected_choice.cache_clear()
    try:
        assert auto_cpu_precision()[0] == "fp32"
    finally:
        compute_dtype._detected_choice.cache_clear()


def test_auto_logs_its_choice_once(cpu_checks, caplog):
    cpu_checks(_is_amx_tile_supported=True)
    compute_dtype._log_auto_choice.cache_clear()
    with caplog.at_level(logging.INFO, logger="spacy_ctxext"):
        for _ in range(3):
            run_precision(None, "auto", CPU, is_train=False)
    logged = [r.getMessage() for r in caplog.records if r.name == "spacy_ctxext"]
    assert len(logged) == 1
    assert "bf16" in logged[0] and "AMX" in logged[0] and 'cpu_precision = "fp32"' in logged[0]


@pytest.mark.parametrize("forced", ["fp32", "bf16", "int8"])
def test_the_environment_forces_what_auto_picks(cpu_checks, monkeypatch, forced):
    cpu_checks(_is_amx_tile_supported=True)
    monkeypatch.setenv(AUTO_ENV, forced)
    assert run_precision(None, "auto", CPU, is_train=False).name == forced
    monkeypatch.setenv(AUTO_ENV, "fp16")
    with pytest.raises(ValueError, match=AUTO_ENV):
        auto_cpu_precision()


@pytest.mark.parametrize("is_train", [False, True])
def test_explicit_cpu_precisions(cpu_checks, is_train):
    cpu_checks(_is_amx_tile_supported=True)
    assert run_precision(None, "fp32", CPU, is_train=is_train) == FP32
    # bf16 autocasts in training too; int8 is inference only.
    assert run_precision(None, "bf16", CPU, is_train=is_train) == BF16
    assert run_precision(None, "int8", CPU, is_train=is_train) == (FP32 if is_train else INT8)


def test_bf16_warns_on_an_x86_cpu_without_amx(cpu_checks):
    cpu_checks(_is_avx512_bf16_supported=True)
    with pytest.warns(CpuBfloat16Warning, match=r"no AMX.*slower than fp32") as caught:
        assert run_precision(None, "bf16", CPU, is_train=False) == BF16
    assert len(caught) == 1


def test_auto_predictions_are_close_to_fp32(trained_nlp, usage_settings, monkeypatch):
    model = trained_nlp.get_pipe("ctx_ner").model
    docs = [trained_nlp.make_doc(t) for t, _ in TRAIN_DATA]
    assert encoder_of(trained_nlp).attrs["cpu_precision"] == "fp32"  # make_nlp asks for it
    fp32 = model.predict(docs)
    usage_settings(cpu_precision="auto")
    try:
        for forced in ("bf16", "int8"):
            monkeypatch.setenv(AUTO_ENV, forced)
            assert encoder_precision(encoder_of(trained_nlp), CPU).name == forced
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CpuBfloat16Warning)
                other = model.predict(docs)
            assert any(not np.array_equal(a, b) for a, b in zip(fp32, other))
            for a, b in zip(fp32, other):
                assert b.dtype == np.float32
                np.testing.assert_allclose(a, b, atol=0.1 * float(np.abs(a).max()))
    finally:  # the int8 copy stays on the session's net otherwise, and run_plan would use it
        encoder_shim(encoder_of(trained_nlp)).inference_encoder = None
