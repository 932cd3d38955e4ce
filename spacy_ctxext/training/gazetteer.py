"""Gazetteers from annotated docs, and scores on the entities a gazetteer cannot know.

A gazetteer built from a training split's own entity strings is the honest way to test
one: it holds only names a user could have collected before seeing the test set. The
same strings tell which test entities are *unseen* (their string never occurs as an
entity in training): the names a model must recognise from context, where a gazetteer
cannot help and memorisation does not count.

    python -m spacy_ctxext.gazetteer corpus/conll2003/train.spacy corpus/conll2003/gazetteer.jsonl
"""

import argparse
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Set

import spacy
import srsly
from spacy.tokens import Doc, DocBin
from spacy.training import Example

__all__ = ["entity_labels", "gazetteer_patterns", "read_docs", "unseen_scores", "main"]


def read_docs(path: Path) -> List[Doc]:
    """The docs of a ``.spacy`` DocBin, on a blank English vocab."""
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


def entity_labels(docs: Iterable[Doc]) -> Dict[str, Counter]:
    """Per entity string in the docs' ``doc.ents``: how often it carries each label."""
    labels: Dict[str, Counter] = defaultdict(Counter)
    for doc in docs:
        for ent in doc.ents:
            labels[ent.text][ent.label_] += 1
    return dict(labels)


def gazetteer_patterns(docs: Iterable[Doc], min_count: int = 1) -> List[Dict[str, str]]:
    """``entity_ruler``-style rows, one per entity string seen ``min_count``+ times, with
    its most frequent label (ties: the label first in alphabetical order)."""
    rows = []
    for text, counts in sorted(entity_labels(docs).items()):
        if sum(counts.values()) >= min_count:
            label = min(counts, key=lambda name: (-counts[name], name))
            rows.append({"label": label, "pattern": text})
    return rows


def unseen_scores(examples: Sequence[Example], seen: Set[str]) -> Dict[str, float]:
    """Entity P/R/F restricted to unseen strings: recall over gold entities whose text is
    not in ``seen``, precision over predicted entities whose text is not in it (exact
    span and label, as spaCy's scorer). ``gold``/``predicted`` count them."""
    gold = _unseen_spans([eg.reference for eg in examples], seen)
    predicted = _unseen_spans([eg.predicted for eg in examples], seen)
    correct = len(gold & predicted)
    p = correct / len(predicted) if predicted else 0.0
    r = correct / len(gold) if gold else 0.0
    return {
        "ents_p": p,
        "ents_r": r,
        "ents_f": 2 * p * r / (p + r) if p + r else 0.0,
        "gold": float(len(gold)),
        "predicted": float(len(predicted)),
    }


def _unseen_spans(docs: Sequence[Doc], seen: Set[str]) -> Set[tuple]:
    """(doc index, start_char, end_char, label) of the docs' entities not in ``seen``."""
    return {
        (i, e.start_char, e.end_char, e.label_)
        for i, doc in enumerate(docs)
        for e in doc.ents
        if e.text not in seen
    }


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, str]]:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.gazetteer",
        description="Write a gazetteer (entity_ruler JSONL) of a DocBin's entity strings.",
    )
    parser.add_argument("docs", type=Path, help="annotated .spacy DocBin (a training split)")
    parser.add_argument("output", type=Path, help="JSONL patterns file to write")
    parser.add_argument("--min-count", type=int, default=1, help="occurrences to keep a string")
    args = parser.parse_args(argv)
    docs = read_docs(args.docs)
    if not any(doc.ents for doc in docs):
        parser.error(f"{args.docs} has no entities to build a gazetteer from")
    rows = gazetteer_patterns(docs, args.min_count)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_jsonl(args.output, rows)
    print(f"wrote {len(rows)} patterns from {len(docs)} docs to {args.output}")
    return rows


if __name__ == "__main__":
    main()
