"""Benchmark measurements: timed runs, the median of noisy runs, peak memory, the machine."""

import math
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spacy_ctxext.benchmark import measure
from spacy_ctxext.benchmark.measure import (
    environment,
    median_run,
    reset_peak_rss,
    rss_mb,
    timed,
)


def test_timed_run_with_a_fake_clock(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    result = timed(lambda: 500, gpu=False)
    assert result["words"] == 500 and result["seconds"] == 2.5
    assert result["words_per_s"] == 200.0
    assert result["rss_peak_mb"] > 0 and "cuda_max_allocated_mb" not in result


def test_median_run_is_the_lower_middle_one():
    runs = [{"seconds": s, "n": i} for i, s in enumerate([3.0, 1.0, 2.0])]
    assert median_run(runs, "seconds") == {"seconds": 2.0, "n": 2, "seconds_all": [3.0, 1.0, 2.0]}
    runs.append({"seconds": 4.0, "n": 3})
    assert median_run(runs, "seconds")["n"] == 2  # of 1, 2, 3, 4: the lower of 2 and 3
    assert median_run(runs[:1], "seconds")["n"] == 0


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs"
)
def test_peak_rss_restarts_after_a_freed_allocation():
    block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
    del block
    assert rss_mb() - rss_mb("VmRSS") > 150
    reset_peak_rss()
    assert rss_mb() - rss_mb("VmRSS") < 50


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_without_proc_only_the_lifetime_peak_is_known(monkeypatch, tmp_path):
    peak_now = rss_mb()
    monkeypatch.setattr(measure, "Path", lambda _: tmp_path / "no_proc")
    assert math.isnan(rss_mb("VmRSS"))
    # ru_maxrss is the lifetime peak: never below VmHWM, which reset_peak_rss restarts.
    assert rss_mb() >= peak_now * 0.99


def test_environment_names_the_cpu_and_the_versions():
    env = environment(-1)
    assert env["device"] == measure.cpu_name() and env["device"]
    assert env["torch"] == torch.__version__ and env["torch_threads"] == torch.get_num_threads()
    assert env["cpu_count"] == os.cpu_count()
    assert {"python", "spacy", "spacy_transformers", "transformers"} <= set(env)
