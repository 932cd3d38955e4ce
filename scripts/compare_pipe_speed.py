"""nlp.pipe words/s of two trained pipelines on the same docs: interleaved rounds, one process.

    python scripts/compare_pipe_speed.py MODEL_A MODEL_B [--docs corpus/conll2003/test.spacy]
        [--n-docs 80] [--threads 1] [--rounds 3]

Each round runs A then B over fresh copies of the gold docs' tokens and gold sentence starts
(`spacy_ctxext.scoring.evaluate`'s `gold_sentences` protocol, not the raw text it scores
first: the tokenizer is not timed); words/s is the median round's. Interleaving makes the
ratio B/A fair even when other jobs share the CPU; the absolute numbers are not.
"""

import argparse
import statistics
import time

import spacy
import torch
from spacy.tokens import DocBin

from spacy_ctxext.training.readers import unannotated_copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("--docs", default="corpus/conll2003/test.spacy")
    parser.add_argument("--n-docs", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipelines = {"A": spacy.load(args.model_a), "B": spacy.load(args.model_b)}
    golds = list(DocBin().from_disk(args.docs).get_docs(pipelines["A"].vocab))[: args.n_docs]
    words = sum(len(gold) for gold in golds)
    seconds = {name: [] for name in pipelines}
    for _ in range(args.rounds):
        for name, nlp in pipelines.items():
            docs = [unannotated_copy(nlp, gold) for gold in golds]
            start = time.perf_counter()
            for _doc in nlp.pipe(docs, batch_size=8):
                pass
            seconds[name].append(time.perf_counter() - start)
    speed = {name: words / statistics.median(s) for name, s in seconds.items()}
    print(f"{words:,} words, {args.threads} thread(s), {args.rounds} rounds")
    for name, model in (("A", args.model_a), ("B", args.model_b)):
        print(f"{name} {model}: {speed[name]:,.0f} words/s (rounds {seconds[name]})")
    print(f"B/A: {speed['B'] / speed['A']:.3f}")


if __name__ == "__main__":
    main()
