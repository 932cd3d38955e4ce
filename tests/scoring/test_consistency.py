"""Label consistency of recurring gold strings."""

import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_ctxext.scoring.consistency import entity_consistency

WORDS = "Smith met Smith and Smith in Paris near Paris".split()


def example(gold, predicted):
    nlp = spacy.blank("en")
    reference, pred = Doc(nlp.vocab, words=WORDS), Doc(nlp.vocab, words=WORDS)
    reference.ents = [Span(reference, i, i + 1, label=label) for i, label in gold]
    pred.ents = [Span(pred, i, i + 1, label=label) for i, label in predicted]
    return Example(pred, reference)


GOLD = [(0, "PER"), (2, "PER"), (4, "PER"), (6, "LOC"), (8, "LOC")]


def test_all_alike_and_correct():
    scores = entity_consistency([example(GOLD, GOLD)])
    assert scores == {"consistency": 1.0, "consistent_correct": 1.0, "repeated": 2.0}


def test_a_different_or_missed_occurrence_breaks_consistency():
    # Smith: PER, ORG, PER -> not alike; Paris: LOC and missed ("O") -> not alike.
    predicted = [(0, "PER"), (2, "ORG"), (4, "PER"), (6, "LOC")]
    assert entity_consistency([example(GOLD, predicted)])["consistency"] == 0.0


def test_alike_but_wrong_is_consistent_not_correct():
    predicted = [(0, "ORG"), (2, "ORG"), (4, "ORG"), (6, "LOC"), (8, "LOC")]
    scores = entity_consistency([example(GOLD, predicted)])
    assert scores["consistency"] == 1.0 and scores["consistent_correct"] == 0.5


def test_strings_seen_once_are_not_counted():
    scores = entity_consistency([example([(0, "PER"), (6, "LOC")], [])])
    assert scores == {"consistency": 0.0, "consistent_correct": 0.0, "repeated": 0.0}
