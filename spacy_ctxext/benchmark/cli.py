"""Throughput of ``ctx_ner`` against spacy-transformers + ``ner`` and the bare encoder.

Paths, timed in one process on the same texts and encoder (heads are random-init: speed
does not depend on trained weights, but memory after the encoder grows with the number of
entities found, so ``--model`` runs a trained ctx_ner pipeline instead):
  a. ``ctx_ner`` through ``nlp.pipe``;
  b. spaCy's ``transformer`` (strided_spans 128/96) + ``ner`` listening to it;
  c. the bare encoder forward over the windows ``ctx_ner`` builds (the practical limit).
``--scaling N`` instead runs ``ctx_ner`` on one doc of N and of N*factor words, each in a
fresh subprocess, and compares their time and peak RSS (``VmHWM``, restarted after the
pipeline is loaded and warm).

Usage: ``python -m spacy_ctxext.benchmark [--encoder NAME] [--random-weights]
[--docs PATH.spacy|PATH.conll] [--n-docs 120] [--words 2000] [--batch-size 8] [--repeat 1]
[--gpu-id 0] [--cpu-precision auto|fp32|bf16|int8] [--compare-precision P]
[--threads N] [--model PIPELINE] [--window W --context C] [--scaling N [--scale-factor 10]]
[--output results/benchmark.json]``
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import torch

from ..models.encoder_shim import encoder_shim
from ..models.pytorch.net_loading import resolve_encoder_name
from ..models.settings import CPU_PRECISIONS, DEFAULT_BATCH_WORDPIECES, DEFAULT_ENCODER
from ..pipeline.ctx_ner import ctx_ner_encoder_layer
from .host import STAGES, ReplayEncoder, host_runners
from .measure import environment, median_run, rss_mb, timed
from .pipelines import (
    bare_encoder,
    build_spacy_transformers,
    ctx_ner_pipeline,
    make_random_encoder,
    pipe_runner,
)
from .texts import load_texts, synthetic_text

# The host path's stage timings: word cache cold each round, warm, and no word cache.
STAGE_RUNNERS = ("stages", "stages_warm_cache", "stages_offset_path")
PATHS = {
    "a": "ctx_ner",
    "b": "spacy-transformers + ner",
    "c": "bare encoder",
    "q": "ctx_ner --compare-precision",
}


def compare(args, encoder: str, gpu: bool) -> dict:
    """Time a, b and c in turn, ``args.repeat`` rounds; each path's median run counts."""
    texts = load_texts(args.docs, args.n_docs, args.words, args.seed)
    nlp_a = ctx_ner_pipeline(args, encoder)
    nlp_b = build_spacy_transformers(resolve_encoder_name(encoder), gpu)
    runners = {
        "a": pipe_runner(nlp_a, texts, args.batch_size),
        "b": pipe_runner(nlp_b, texts, args.batch_size),
        "c": bare_encoder(nlp_a, texts, args.batch_size),
    }
    if args.compare_precision:  # (q) the same ctx_ner in another precision, interleaved
        nlp_q = ctx_ner_pipeline(args, encoder, cpu_precision=args.compare_precision)
        runners["q"] = pipe_runner(nlp_q, texts, args.batch_size)
    for run in runners.values():
        run(2)  # warm-up
    trials: Dict[str, List[dict]] = {key: [] for key in runners}
    for _ in range(args.repeat):
        for key, run in runners.items():
            trials[key].append(timed(run, gpu))
    paths = {key: median_run(runs, "seconds") for key, runs in trials.items()}
    wps = {k: v["words_per_s"] for k, v in paths.items()}
    ratios = {"a/b": wps["a"] / wps["b"], "a/c": wps["a"] / wps["c"]}
    if "q" in wps:
        ratios.update({"q/b": wps["q"] / wps["b"], "q/a": wps["q"] / wps["a"]})
    return {"docs": len(texts), "paths": paths, "ratios": ratios}


def host_path(args, encoder: str) -> dict:
    """The host path (``host``): stages and nlp.pipe with the null encoder (or, with
    ``--host-stages``, the pipeline's own), in ``args.repeat`` interleaved rounds; each
    runner's median round counts."""
    texts = load_texts(args.docs, args.n_docs, args.words, args.seed)
    nlp = ctx_ner_pipeline(args, encoder)
    runners = host_runners(nlp, texts, args.batch_size, null_encoder=args.null_encoder)
    for run in runners.values():
        run()  # warm-up (and, replaying, the one round that runs the encoder)
    trials: Dict[str, List[dict]] = {key: [] for key in runners}
    for _ in range(args.repeat):
        for key, run in runners.items():
            trials[key].append(run())
    stages = {k: median_run(trials[k], "ctx_ner_host_words_per_s") for k in STAGE_RUNNERS}
    pipes = {k: median_run(trials[k], "words_per_s") for k in ("pipe_texts", "pipe_docs")}
    replay = encoder_shim(ctx_ner_encoder_layer(nlp)).inference_encoder
    calls = {"encoder_runs": replay.misses} if isinstance(replay, ReplayEncoder) else {}
    return {"docs": len(texts), "host": {**stages, **pipes}, **calls}


def format_host(result: dict) -> str:
    host = result["host"]
    words = host["stages"]["words"]
    heads = "".join(f"{h:>15}" for h in ("cold cache", "warm cache", "offsets"))
    which = "null encoder" if result["settings"]["null_encoder"] else "own encoder, replayed"
    lines = [f"{which + ', ' + str(words) + ' words, words/s':40}{heads}"]
    for key in STAGES + ("ctx_ner_host",):
        cells = [host[runner][key + "_words_per_s"] for runner in STAGE_RUNNERS]
        name = "ctx_ner host stages (all but make_doc)" if key == "ctx_ner_host" else key
        lines.append(f"{name:40}" + "".join(f"{c:>15,.0f}" for c in cells))
    lines.append(f"{'nlp.pipe(texts)':40}{host['pipe_texts']['words_per_s']:>15,.0f}")
    lines.append(f"{'nlp.pipe(Docs)':40}{host['pipe_docs']['words_per_s']:>15,.0f}")
    return "\n".join(lines)


def run_child(args, encoder: str, gpu: bool) -> dict:
    """One ctx_ner run on a single synthetic doc of args.child words (for --scaling)."""
    nlp = ctx_ner_pipeline(args, encoder)
    nlp(synthetic_text(200, args.seed + 1))  # warm-up
    text = synthetic_text(args.child, args.seed)
    baseline = rss_mb("VmRSS")
    made = {}

    def run() -> int:
        made["doc"] = nlp.make_doc(text)
        made["rss_doc_mb"] = rss_mb("VmRSS")
        made["doc"] = nlp(made["doc"])
        return len(made["doc"])

    result = timed(run, gpu)
    result["entities"] = len(made["doc"].ents)
    result["rss_baseline_mb"] = baseline
    result["rss_growth_mb"] = result["rss_peak_mb"] - baseline
    # The input Doc's own memory (make_doc) apart from what the pipeline adds on top.
    result["rss_doc_mb"] = made["rss_doc_mb"] - baseline
    result["rss_pipeline_mb"] = result["rss_peak_mb"] - made["rss_doc_mb"]
    return result


def child_command(args, encoder: str, n_words: int, output: Path) -> List[str]:
    cmd = [sys.executable, "-m", "spacy_ctxext.benchmark", "--_child", str(n_words)]
    cmd += ["--encoder", encoder, "--gpu-id", str(args.gpu_id), "--seed", str(args.seed)]
    cmd += ["--batch-wordpieces", str(args.batch_wordpieces), "--output", str(output)]
    cmd += ["--threads", str(args.threads)] if args.threads else []
    cmd += ["--cpu-precision", args.cpu_precision] if args.cpu_precision else []
    cmd += ["--model", args.model] if args.model else []
    cmd += ["--window", str(args.window)] if args.window else []
    cmd += ["--context", str(args.context)] if args.context is not None else []
    return cmd


def scaling(args, encoder: str) -> dict:
    """Each size in fresh processes, ``args.repeat`` rounds; the run of median peak counts
    (glibc's heap makes a 1M-word peak vary by ~100 MB from run to run)."""
    sizes = {"small": args.scaling, "large": args.scaling * args.scale_factor}
    trials: Dict[str, List[dict]] = {key: [] for key in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for key, n_words in sizes.items():
                out = Path(tmp) / f"{key}.json"
                subprocess.run(child_command(args, encoder, n_words, out), check=True)
                trials[key].append(json.loads(out.read_text())["run"])
    runs = {key: median_run(runs, "rss_peak_mb") for key, runs in trials.items()}
    s, g = runs["small"], runs["large"]
    ratios = {k: g[k] / s[k] for k in ("words", "seconds", "rss_peak_mb")}
    # Growth over the warm process; a floor of 1 MB keeps a near-zero small run from exploding it.
    for key in ("rss_growth_mb", "rss_pipeline_mb"):
        ratios[key] = g[key] / max(s[key], 1.0)
    if "cuda_max_allocated_mb" in s:
        ratios["cuda_max_allocated_mb"] = g["cuda_max_allocated_mb"] / s["cuda_max_allocated_mb"]
    return {"scaling": runs, "ratios": ratios}


COLUMNS = {
    "words": "words",
    "seconds": "seconds",
    "words_per_s": "words/s",
    "rss_peak_mb": "peak RSS MB",
    "rss_growth_mb": "RSS growth MB",
    "rss_doc_mb": "of it Doc MB",
    "rss_pipeline_mb": "pipeline MB",
    "entities": "entities",
    "cuda_max_allocated_mb": "CUDA max MB",
}


def format_table(result: dict) -> str:
    runs = result.get("paths") or result["scaling"]
    names = PATHS if "paths" in result else {k: f"1 doc of {r['words']:,}" for k, r in runs.items()}
    cols = [c for c in COLUMNS if any(c in r for r in runs.values())]
    lines = [f"{'':30}" + "".join(f"{COLUMNS[c]:>15}" for c in cols)]
    for key, run in runs.items():
        cells = [f"{run[c]:>15,.3f}" if c == "seconds" else f"{run[c]:>15,.0f}" for c in cols]
        lines.append(f"{key + ' ' + names[key]:30}" + "".join(cells))
    lines.append("ratios: " + "  ".join(f"{k} = {v:.3f}" for k, v in result["ratios"].items()))
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="folder or package name")
    p.add_argument("--random-weights", action="store_true", help="random init from its config")
    p.add_argument("--docs", help="real texts: a .spacy DocBin or a CoNLL file")
    p.add_argument("--n-docs", type=int, help="docs to use (synthetic: 120; real: all)")
    p.add_argument("--words", type=int, default=2000, help="words per synthetic doc")
    p.add_argument("--batch-size", type=int, default=8, help="nlp.pipe batch size")
    p.add_argument("--repeat", type=int, default=1, help="rounds of a, b, c or of --scaling")
    p.add_argument(
        "--batch-wordpieces",
        type=int,
        default=DEFAULT_BATCH_WORDPIECES,
        help="ctx_ner encoder budget",
    )
    p.add_argument("--window", type=int, help="ctx_ner window, wordpieces (default: its own)")
    p.add_argument("--context", type=int, help="ctx_ner context each side (default: its own)")
    p.add_argument("--gpu-id", type=int, default=-1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cpu-precision",
        choices=CPU_PRECISIONS,
        help="ctx_ner's (a, c) cpu_precision (default: the pipeline's own; new: auto)",
    )
    p.add_argument(
        "--compare-precision",
        choices=CPU_PRECISIONS,
        help="also time (q): ctx_ner with this cpu_precision",
    )
    p.add_argument(
        "--null-encoder", action="store_true", help="the host path: ctx_ner's stages, null encoder"
    )
    p.add_argument(
        "--host-stages",
        action="store_true",
        help="the host path's stages with the pipeline's own encoder's outputs, run once and "
        "replayed (with --model: a trained model's real tags)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--model", help="(a) a trained pipeline with ctx_ner (default: random head)")
    p.add_argument("--scaling", type=int, metavar="N", help="ctx_ner on 1 doc of N, N*factor")
    p.add_argument("--scale-factor", type=int, default=10)
    p.add_argument("--output", help="JSON (default results/benchmark[_scaling].json)")
    p.add_argument("--_child", dest="child", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    gpu = args.gpu_id >= 0
    if args.threads:
        torch.set_num_threads(args.threads)
    if gpu:
        spacy.require_gpu(args.gpu_id)
        from thinc.api import set_gpu_allocator

        set_gpu_allocator("pytorch")  # so CuPy's arrays count in torch's peak memory too
    default = "benchmark_scaling.json" if args.scaling else "benchmark.json"
    output = Path(args.output or Path("results") / default)
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "child")}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = args.encoder
        if args.random_weights and not args.child:
            encoder = make_random_encoder(encoder, tmp, args.seed)
        if args.child:
            result = {"run": run_child(args, encoder, gpu)}
        elif args.null_encoder or args.host_stages:
            result = host_path(args, encoder)
        elif args.scaling:
            result = scaling(args, encoder)
        else:
            result = compare(args, encoder, gpu)
    result = {"settings": settings, "environment": environment(args.gpu_id), **result}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    if not args.child:
        host = args.null_encoder or args.host_stages
        print(format_host(result) if host else format_table(result))
        print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
