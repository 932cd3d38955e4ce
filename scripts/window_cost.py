"""What a window setting costs: words/s of trained ctx_ner pipelines, each under usage
settings of its own, on the same texts in one process, in interleaved rounds.

Speed does not depend on the trained weights, only on what the windows read, so one model
read with other settings (``apply_usage_settings``: window, context, retrieved passages)
times another configuration; each arm's median round counts (these machines are noisy).

Usage:
    python scripts/window_cost.py --docs corpus/litbank/dev.spacy --repeat 3 \
        --arm "main-job=MODEL,window=512,context=64,retrieved_passages=0" \
        --arm "retrieval=MODEL,window=258,context=48,retrieved_passages=2,passage_pieces=32" \
        --output results/window-cost-litbank.json
"""

import argparse
import json
from pathlib import Path
from typing import Dict, List, Tuple

import spacy

from spacy_ctxext.benchmark.measure import environment, median_run, timed
from spacy_ctxext.benchmark.pipelines import pipe_runner
from spacy_ctxext.benchmark.texts import load_texts
from spacy_ctxext.models.encoder_layer import apply_usage_settings
from spacy_ctxext.pipeline.ctx_ner import ctx_ner_encoder_layer


def parse_arm(text: str) -> Tuple[str, str, Dict[str, object]]:
    """``NAME=MODEL[,key=value...]`` -> (name, model path, usage settings)."""
    name, _, rest = text.partition("=")
    model, *pairs = rest.split(",")
    if not name or not model:
        raise SystemExit(f"--arm {text!r}: expected NAME=MODEL[,key=value...]")
    usage: Dict[str, object] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        usage[key] = int(value) if value.lstrip("-").isdigit() else value
    return name, model, usage


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", required=True, help="a .spacy DocBin or CoNLL file")
    parser.add_argument("--arm", action="append", required=True, help="NAME=MODEL[,key=value]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    texts = load_texts(args.docs, None, 0, 0)
    runners, settings = {}, {}
    for name, model, usage in map(parse_arm, args.arm):
        nlp = spacy.load(model)
        apply_usage_settings(ctx_ner_encoder_layer(nlp), usage)
        runners[name] = pipe_runner(nlp, texts, args.batch_size)
        settings[name] = {"model": model, **usage}
    for run in runners.values():
        run(2)  # warm-up
    trials: Dict[str, List[dict]] = {name: [] for name in runners}
    for _ in range(args.repeat):
        for name, run in runners.items():
            trials[name].append(timed(run, gpu=False))
    arms = {name: median_run(runs, "seconds") for name, runs in trials.items()}
    first = next(iter(arms))
    for name, arm in arms.items():
        ratio = arm["words_per_s"] / arms[first]["words_per_s"]
        print(f"{name:20s} {arm['words_per_s']:8.0f} words/s  {ratio:.2f}x {first}")
    result = {"docs": args.docs, "texts": len(texts), "settings": settings, "arms": arms}
    result["environment"] = environment(-1)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
