"""Gazetteers from annotated docs: the entity strings of a split, with their labels.

A gazetteer built from a training split's own entity strings is the honest way to test
one: it holds only names a user could have collected before seeing the test set. The
same strings tell which test entities are *unseen* (``scoring.unseen``).

    spacy ctxext gazetteer corpus/conll2003/train.spacy corpus/conll2003/gazetteer.jsonl
"""

from collections import Counter, defaultdict
from typing import Dict, Iterable, List

from spacy.tokens import Doc

__all__ = ["entity_labels", "gazetteer_patterns"]


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
