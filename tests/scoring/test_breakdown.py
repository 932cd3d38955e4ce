"""spacy_ctxext.scoring.breakdown: entity P/R/F by mention (first or repeat) and by position."""

import pytest
import spacy
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from spacy_ctxext.scoring.breakdown import entity_breakdown, mention_kind, position_bucket

WORDS = "Smith met the USA team . Smith and US officials flew to Paris with Smith".split()


@pytest.fixture(scope="module")
def example():
    nlp = spacy.blank("en")
    #         Smith  ...  USA   ...  Smith    ...  US     ...  Paris     Smith
    gold = ["B-PER", "O", "O", "B-LOC", "O", "O", "B-PER", "O", "B-LOC", "O", "O", "O",
            "B-LOC", "O", "B-PER"]  # fmt: skip
    pred = ["B-PER", "O", "O", "B-LOC", "O", "O", "O", "O", "B-ORG", "O", "O", "O",
            "B-LOC", "O", "B-PER"]  # fmt: skip
    return Example(Doc(nlp.vocab, words=WORDS, ents=pred), Doc(nlp.vocab, words=WORDS, ents=gold))


def test_mention_kind_needs_the_whole_string(example):
    doc = example.reference
    smiths = [ent for ent in doc.ents if ent.text == "Smith"]
    assert [mention_kind(doc, ent) for ent in smiths] == ["first", "repeat", "repeat"]
    us = next(ent for ent in doc.ents if ent.text == "US")
    assert mention_kind(doc, us) == "first"  # "USA" earlier is another string


def test_position_bucket(example):
    doc = example.reference
    assert [position_bucket(doc, ent) for ent in doc.ents] == [
        "0-25%",
        "0-25%",
        "25-50%",
        "25-50%",
        "75-100%",
        "75-100%",
    ]  # fmt: skip  (72 characters: quarters start at 18, 36 and 54)


def test_breakdown_counts_and_scores(example):
    breakdown = entity_breakdown([example])
    # first: gold Smith, USA, US, Paris; predicted Smith, USA, US/ORG, Paris -> 3 of 4.
    assert breakdown["mention"]["first"] == pytest.approx(
        {"p": 0.75, "r": 0.75, "f": 0.75, "gold": 4, "predicted": 4}
    )
    # repeat: gold Smith x2, predicted the last one only.
    assert breakdown["mention"]["repeat"] == pytest.approx(
        {"p": 1.0, "r": 0.5, "f": 2 / 3, "gold": 2, "predicted": 1}
    )
    assert list(breakdown["position"]) == ["0-25%", "25-50%", "75-100%"]  # none in 50-75%
    assert breakdown["position"]["25-50%"]["r"] == 0.0  # the second Smith missed, US an ORG
    # Each bucketing splits the same spans: counts add up to spaCy's scorer's.
    total = get_ner_prf([example])
    for buckets in breakdown.values():
        assert sum(row["gold"] for row in buckets.values()) == 6
        assert sum(row["predicted"] for row in buckets.values()) == 5
    true_positives = sum(row["r"] * row["gold"] for row in breakdown["mention"].values())
    assert true_positives / 6 == pytest.approx(total["ents_r"])


def test_docs_without_entity_annotation_are_left_out():
    nlp = spacy.blank("en")
    bare = Doc(nlp.vocab, words=["Smith"])
    assert entity_breakdown([Example(bare, bare)]) == {"mention": {}, "position": {}}
