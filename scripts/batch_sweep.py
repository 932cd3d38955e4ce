"""Throughput of a ctx_ner pipeline over nlp.pipe batch sizes and encoder wordpiece budgets,
and whether its entities (and the raw-text entity F1) move with them.

    python scripts/batch_sweep.py MODEL DOCS.spacy [--batch-sizes 8 32 128]
        [--batch-wordpieces 2048 4096 8192] [--repeat 3] [--threads 2]
        [--output results/batch_sweep.json]

Each round times every setting once, in turn (so load drifts hit all alike); a setting's
median round counts. The entities of every setting are compared with the first's.
"""

import argparse
import json
import statistics
import time
from itertools import product
from pathlib import Path

import spacy
import torch
from spacy.scorer import get_ner_prf
from spacy.training import Example

from spacy_ctxext.benchmark.measure import environment
from spacy_ctxext.models.encoder_layer import apply_usage_settings
from spacy_ctxext.pipeline.ctx_ner import ctx_ner_encoder_layer
from spacy_ctxext.training.readers import read_docbin


def run(nlp, texts, batch_size, batch_wordpieces):
    apply_usage_settings(ctx_ner_encoder_layer(nlp), {"batch_wordpieces": batch_wordpieces})
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    return time.perf_counter() - start, docs


def entity_lists(docs):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("docs", help="a .spacy DocBin with gold entities")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--batch-wordpieces", type=int, nargs="+", default=[2048, 4096, 8192])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--output", default="results/batch_sweep.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    nlp = spacy.load(args.model)
    gold = list(read_docbin(Path(args.docs), nlp.vocab))
    texts = [doc.text for doc in gold]
    words = sum(len(doc) for doc in gold)
    settings = list(product(args.batch_sizes, args.batch_wordpieces))
    run(nlp, texts[:8], *settings[0])  # warm-up
    seconds = {s: [] for s in settings}
    found = {}
    for _ in range(args.repeat):
        for setting in settings:
            elapsed, docs = run(nlp, texts, *setting)
            seconds[setting].append(elapsed)
            found.setdefault(setting, docs)
    reference = entity_lists(found[settings[0]])
    rows = []
    for (batch_size, budget), times in seconds.items():
        docs = found[(batch_size, budget)]
        prf = get_ner_prf([Example(p, g) for p, g in zip(docs, gold)])
        same = sum(a == b for a, b in zip(entity_lists(docs), reference))
        rows.append(
            {
                "batch_size": batch_size,
                "batch_wordpieces": budget,
                "words_per_s": words / statistics.median(times),
                "ents_f": prf["ents_f"],
                "docs_as_first_setting": same,
            }
        )
    precision = nlp.get_pipe("ctx_ner").precision
    print(f"{args.model}: {len(texts)} docs, {words:,} gold words, encoder {precision}")
    print(f"{'batch_size':>10} {'wordpieces':>10} {'words/s':>9} {'ents_f':>7} same-docs")
    for row in rows:
        print(
            f"{row['batch_size']:>10} {row['batch_wordpieces']:>10} {row['words_per_s']:>9,.0f} "
            f"{100 * row['ents_f']:>7.2f} {row['docs_as_first_setting']}/{len(texts)}"
        )
    result = {"settings": vars(args), "environment": environment(-1), "precision": precision}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({**result, "rows": rows}, indent=2) + "\n", encoding="utf8")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
