"""spacy_ctxext.scoring.paired: per-document counts and the paired bootstrap."""

import numpy as np
import pytest
import spacy
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from spacy_ctxext.scoring.paired import doc_counts, paired_bootstrap, pool_runs

WORDS = "Smith met the USA team . Smith and US officials flew to Paris with Smith".split()
GOLD = ["B-PER", "O", "O", "B-LOC", "O", "O", "B-PER", "O", "B-LOC", "O", "O", "O",
        "B-LOC", "O", "B-PER"]  # fmt: skip
PRED = ["B-PER", "O", "O", "B-LOC", "O", "O", "O", "O", "B-ORG", "O", "O", "O",
        "B-LOC", "O", "B-PER"]  # fmt: skip


def make_example(pred=PRED, gold=GOLD):
    vocab = spacy.blank("en").vocab
    return Example(Doc(vocab, words=WORDS, ents=pred), Doc(vocab, words=WORDS, ents=gold))


def test_counts_split_first_and_repeated_mentions():
    (row,) = doc_counts([make_example()])
    # first: Smith, USA, US, Paris gold; US predicted ORG -> tp 3, fp 1, fn 1.
    # repeat: Smith twice in gold, the last one predicted -> tp 1, fp 0, fn 1.
    assert row == [4, 1, 2, 3, 1, 1, 1, 0, 1]
    total = get_ner_prf([make_example()])
    tp, fp, fn = row[:3]
    assert tp / (tp + fp) == pytest.approx(total["ents_p"])
    assert tp / (tp + fn) == pytest.approx(total["ents_r"])


def test_docs_without_entity_annotation_are_left_out():
    bare = Doc(spacy.blank("en").vocab, words=WORDS)
    assert doc_counts([Example(bare, bare), make_example()]) == doc_counts([make_example()])


def test_the_same_run_twice_differs_by_nothing():
    counts = doc_counts([make_example()] * 5)
    result = paired_bootstrap(counts, counts, resamples=200)
    assert result["all"] == {**result["all"], "delta": 0.0, "low": 0.0, "high": 0.0}


def test_a_run_better_on_every_doc_has_an_interval_above_zero():
    worse = [[5, 3, 3, 4, 2, 2, 1, 1, 1]] * 8
    better = [[7, 1, 1, 5, 1, 1, 2, 0, 0]] * 8
    result = paired_bootstrap(worse, better, resamples=200)
    assert result["all"]["low"] > 0 and result["all"]["delta"] == pytest.approx(
        result["all"]["f1_b"] - result["all"]["f1_a"], abs=0.011
    )
    assert result["repeat"]["f1_b"] == 100.0


def test_a_gain_on_one_doc_of_many_is_not_certain():
    rng = np.random.default_rng(0)
    base = rng.integers(1, 20, size=(10, 9)).tolist()
    lucky = [list(row) for row in base]
    lucky[0][0] += 3  # three more hits in one document
    lucky[0][2] = max(lucky[0][2] - 3, 0)
    result = paired_bootstrap(base, lucky, resamples=1000)
    assert result["all"]["delta"] > 0 and result["all"]["low"] <= 0


def test_documents_must_pair():
    with pytest.raises(ValueError, match="same documents"):
        paired_bootstrap([[1, 0, 0] * 3], [[1, 0, 0] * 3] * 2)


def test_counts_agree_with_spacys_scorer_on_raw_text():
    """Raw text: the pipeline's tokens differ from the gold ones ("New-York" is one
    token there, three in gold); counts still sum to spaCy's P and R."""
    nlp = spacy.blank("en")
    gold = Doc(nlp.vocab, words=["Smith", "flew", "to", "New", "-", "York", "."],
               ents=["B-PER", "O", "O", "B-LOC", "I-LOC", "I-LOC", "O"])  # fmt: skip
    predicted = Doc(nlp.vocab, words=["Smith", "flew", "to", "New-York", "."],
                    ents=["B-PER", "O", "O", "B-LOC", "O"])  # fmt: skip
    example = Example(predicted, gold)
    (row,) = doc_counts([example])
    total = get_ner_prf([example])
    tp, fp, fn = row[:3]
    assert (tp, fp, fn) == (2, 0, 0)
    assert tp / (tp + fp) == pytest.approx(total["ents_p"])
    assert tp / (tp + fn) == pytest.approx(total["ents_r"])


def test_seeds_on_one_split_are_summed_and_splits_are_stacked():
    seed0, seed1 = [[1] * 9, [2] * 9], [[3] * 9, [4] * 9]
    other_split = [[5] * 9]
    pooled = pool_runs([("split2", other_split), ("split1", seed0), ("split1", seed1)])
    assert pooled.tolist() == [[4] * 9, [6] * 9, [5] * 9]


def test_runs_on_one_split_must_count_the_same_documents():
    with pytest.raises(ValueError, match="not scored on the same documents"):
        pool_runs([("dev", [[1] * 9] * 2), ("dev", [[1] * 9] * 3)])
