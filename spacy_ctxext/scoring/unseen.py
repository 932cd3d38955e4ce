"""Scores on the entities whose string never occurs as an entity in the training split: the
names a model must recognise from context, where a gazetteer cannot help and
memorisation does not count.
"""

from __future__ import annotations

from typing import Dict, Sequence, Set

from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example


def unseen_scores(examples: Sequence[Example], seen: Set[str]) -> Dict[str, float]:
    """Entity P/R/F restricted to unseen strings: recall over gold entities whose text is
    not in ``seen``, precision over predicted entities whose text is not in it (exact
    span and label, as spaCy's scorer). ``gold``/``predicted`` count them."""
    gold = _unseen_spans([eg.reference for eg in examples], seen)
    predicted = _unseen_spans([eg.predicted for eg in examples], seen)
    score = PRFScore()
    score.score_set(predicted, gold)
    return {
        "ents_p": score.precision,
        "ents_r": score.recall,
        "ents_f": score.fscore,
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
