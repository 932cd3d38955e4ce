"""Timing, peak memory and the machine a benchmark ran on."""

import os
import platform
import resource
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Callable, List

import spacy
import torch

from ..extras import installed_version


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory, MB.

    Without /proc only the process's lifetime peak is known (``ru_maxrss``: bytes on
    macOS, KiB elsewhere); the current size is then NaN.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    if field != "VmHWM":
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def reset_peak_rss() -> None:
    """Restart the peak (VmHWM) at the current RSS, so that a peak is one run's.

    Loading a saved pipeline peaks higher than running it on a 10,000-word doc, so the
    process's lifetime peak would hide the run. Linux >= 4.0; elsewhere peaks stay the
    process's.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def timed(run: Callable[[], int], gpu: bool) -> dict:
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    reset_peak_rss()
    start = time.perf_counter()
    words = run()
    if gpu:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {"words": words, "seconds": seconds, "words_per_s": words / seconds}
    result["rss_peak_mb"] = rss_mb()  # the peak during this run
    if gpu:
        result["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def median_run(runs: List[dict], key: str) -> dict:
    """The run of median ``key`` (the lower one of an even count), with every run's
    ``key`` listed as ``key_all``: these machines are noisy."""
    ordered = sorted(runs, key=lambda run: run[key])
    return {**ordered[(len(ordered) - 1) // 2], f"{key}_all": [run[key] for run in runs]}


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text(encoding="utf8").splitlines() if info.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "cpu"


def environment(gpu_id: int) -> dict:
    gpu = gpu_id >= 0
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "spacy": spacy.__version__,
        "spacy_transformers": installed_version("spacy-transformers"),
        "transformers": version("transformers"),
        "device": torch.cuda.get_device_name(gpu_id) if gpu else cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
