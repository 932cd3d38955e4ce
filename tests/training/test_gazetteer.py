"""spacy_ctxext.training.gazetteer: patterns from a training split, scores on unseen entities."""

import json

import pytest
import spacy
import srsly
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from util import GOLD, make_ruler_nlp, write_gold

from spacy_ctxext.cli.evaluate import main as evaluate_main
from spacy_ctxext.cli.gazetteer import main
from spacy_ctxext.scoring.unseen import unseen_scores
from spacy_ctxext.training.gazetteer import gazetteer_patterns
from spacy_ctxext.training.readers import unannotated_copy

TRAIN = [
    ("John Smith met Apple in Paris .", ["B-PER", "I-PER", "O", "B-ORG", "O", "B-LOC", "O"]),
    ("Apple sued Paris .", ["B-ORG", "O", "B-PER", "O"]),
    ("Apple and New York .", ["B-ORG", "O", "B-LOC", "I-LOC", "O"]),
]


def docs_of(nlp, data):
    return [
        Doc(nlp.vocab, words=text.split(), spaces=[True] * len(text.split()), ents=tags)
        for text, tags in data
    ]


def test_patterns_take_the_most_frequent_label_and_min_count():
    docs = docs_of(spacy.blank("en"), TRAIN)
    rows = gazetteer_patterns(docs)
    assert {r["pattern"]: r["label"] for r in rows} == {
        "John Smith": "PER",
        "Apple": "ORG",
        "Paris": "LOC",  # LOC once, PER once: ties go to the first label alphabetically
        "New York": "LOC",
    }
    assert [r["pattern"] for r in gazetteer_patterns(docs, min_count=2)] == ["Apple", "Paris"]


def test_unseen_scores_count_only_strings_not_seen_in_training():
    nlp = make_ruler_nlp()
    golds = docs_of(nlp, GOLD)
    pairs = [Example(nlp(unannotated_copy(nlp, gold)), gold) for gold in golds]
    # Seen: John Smith, New York. Unseen gold: Mary Jones, Paris, Peter Brown; unseen
    # predictions: Reuters (wrong), Paris (right).
    scores = unseen_scores(pairs, {"John Smith", "New York"})
    assert (scores["gold"], scores["predicted"]) == (3, 2)
    assert scores["ents_p"] == pytest.approx(1 / 2)
    assert scores["ents_r"] == pytest.approx(1 / 3)
    assert scores["ents_f"] == pytest.approx(0.4)
    # With the others seen, the unseen ones are John Smith and New York x2: all found.
    only_ruler_names = unseen_scores(pairs, {"Paris", "Reuters", "Mary Jones", "Peter Brown"})
    assert (only_ruler_names["gold"], only_ruler_names["ents_f"]) == (3, 1.0)


def test_cli_and_evaluate_with_seen(tmp_path, capsys):
    nlp = make_ruler_nlp()
    DocBin(docs=docs_of(nlp, TRAIN)).to_disk(tmp_path / "train.spacy")
    rows = main([str(tmp_path / "train.spacy"), str(tmp_path / "gaz" / "patterns.jsonl")])
    assert list(srsly.read_jsonl(tmp_path / "gaz" / "patterns.jsonl")) == rows
    assert "wrote 4 patterns from 3 docs" in capsys.readouterr().out

    nlp.to_disk(tmp_path / "model")
    gold = write_gold(nlp, tmp_path / "gold.spacy")
    output = tmp_path / "result.json"
    args = [str(tmp_path / "model"), str(gold), "--seen", str(tmp_path / "train.spacy")]
    evaluate_main([*args, "--output", str(output)])
    unseen = json.loads(output.read_text())["unseen"]
    # Seen: John Smith, Paris, New York (and Apple). Unseen gold: Mary Jones, Peter Brown;
    # unseen predicted: Reuters. Nothing unseen is right.
    assert (unseen["gold"], unseen["predicted"], unseen["ents_f"]) == (2, 1, 0.0)
    assert "unseen in training" in output.with_suffix(".txt").read_text()


def test_no_entities_is_a_clear_error(tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=[Doc(nlp.vocab, words=["no", "names"])]).to_disk(tmp_path / "bare.spacy")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "bare.spacy"), str(tmp_path / "out.jsonl")])
