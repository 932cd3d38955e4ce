"""spacy_ctxext.scoring.evaluate with a blank pipeline + entity_ruler (no ctx_ner, no network)."""

import json
import re
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from util import TRAIN_DATA, make_ruler_nlp, write_gold

from spacy_ctxext.cli.evaluate import main
from spacy_ctxext.scoring.evaluate import (
    UnknownLabelsWarning,
    evaluate_pipeline,
    warn_unknown_labels,
)
from spacy_ctxext.scoring.tag_reports import format_report, iob2_tags, token_report
from spacy_ctxext.training.readers import unannotated_copy


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    nlp = make_ruler_nlp()
    nlp.to_disk(folder / "model")
    return str(folder / "model"), str(write_gold(nlp, folder / "gold.spacy"))


@pytest.fixture(scope="module")
def result(model_and_data):
    return evaluate_pipeline(*model_and_data, batch_size=2)


def test_spacy_scores(result):
    spacy_scores = result["spacy"]
    assert spacy_scores["ents_p"] == pytest.approx(4 / 5)
    assert spacy_scores["ents_r"] == pytest.approx(4 / 6)
    assert spacy_scores["ents_f"] == pytest.approx(8 / 11)
    per_type = spacy_scores["ents_per_type"]
    assert per_type["PER"] == pytest.approx({"p": 1.0, "r": 1 / 3, "f": 0.5})
    assert per_type["LOC"] == pytest.approx({"p": 1.0, "r": 1.0, "f": 1.0})
    assert per_type["ORG"] == pytest.approx({"p": 0.0, "r": 0.0, "f": 0.0})


def test_counts_and_json(result):
    assert result["docs"] == 3
    assert result["tokens"] == 21
    assert result["words_per_second"] > 0
    assert json.loads(json.dumps(result)) == result


def assert_rows(report, **rows):
    """Each row's (precision, recall, f1-score, support); ``micro`` is "micro avg"."""
    for name, (p, r, f, support) in rows.items():
        row = report["micro avg" if name == "micro" else name]
        expected = {"precision": p, "recall": r, "f1-score": f, "support": support}
        assert row == pytest.approx(expected), name


def test_seqeval_entity_report(result):
    entity = result["seqeval"]["entity"]
    assert set(entity) == {"LOC", "ORG", "PER", "micro avg", "macro avg", "weighted avg"}
    assert_rows(
        entity,
        PER=(1.0, 1 / 3, 0.5, 3),
        LOC=(1.0, 1.0, 1.0, 3),
        ORG=(0.0, 0.0, 0.0, 0),
        micro=(0.8, 2 / 3, 8 / 11, 6),
    )
    assert entity["macro avg"]["f1-score"] == pytest.approx(0.5)
    assert isinstance(entity["PER"]["support"], int)
    assert "micro avg     0.8000    0.6667    0.7273         6" in result["seqeval"]["entity_text"]


def test_token_report(result):
    # PER: 6 gold tokens, 2 predicted, 2 correct; LOC 5/5/5; ORG 0 gold, 1 predicted.
    token = result["seqeval"]["token"]
    assert list(token) == ["LOC", "ORG", "PER", "micro avg", "macro avg", "weighted avg"]
    assert_rows(
        token,
        PER=(1.0, 1 / 3, 0.5, 6),
        LOC=(1.0, 1.0, 1.0, 5),
        ORG=(0.0, 0.0, 0.0, 0),
        micro=(7 / 8, 7 / 11, 14 / 19, 11),
    )
    assert token["macro avg"] == pytest.approx(
        {"precision": 2 / 3, "recall": 4 / 9, "f1-score": 0.5, "support": 11}
    )
    assert token["weighted avg"] == pytest.approx(
        {"precision": 1.0, "recall": 7 / 11, "f1-score": 8 / 11, "support": 11}
    )
    text = result["seqeval"]["token_text"]
    assert "         PER     1.0000    0.3333    0.5000         6" in text
    assert "   micro avg     0.8750    0.6364    0.7368        11" in text


def test_iob2_and_copy():
    nlp = spacy.blank("en")
    gold = Doc(
        nlp.vocab,
        words=["New York", "is", "big", ".", "Yes"],  # not how the tokenizer would split it
        spaces=[True, True, False, True, False],
        sent_starts=[True, False, False, False, True],
        ents=["B-LOC", "O", "O", "O", "B-LOC"],
    )
    copy = unannotated_copy(nlp, gold)
    assert [t.text for t in copy] == [t.text for t in gold]
    assert copy.text == gold.text
    assert [s.start for s in copy.sents] == [0, 4]
    assert copy.ents == ()
    assert iob2_tags(gold) == ["B-LOC", "O", "O", "O", "B-LOC"]
    adjacent = Doc(nlp.vocab, words=["a", "b", "c"], ents=["B-PER", "B-PER", "I-PER"])
    assert iob2_tags(adjacent) == ["B-PER", "B-PER", "I-PER"]


def test_token_report_mismatch_and_format():
    with pytest.raises(ValueError, match="length"):
        token_report([["O", "B-X"]], [["O"]])
    report = token_report([["B-X", "I-X", "O"]], [["B-X", "O", "O"]])
    assert report["X"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1-score": 2 / 3, "support": 2}
    )
    lines = format_report(report).splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]


def test_language_object_and_no_entities(tmp_path):
    nlp = spacy.blank("en")  # no NER component at all: ents scored by the fallback
    gold = write_gold(nlp, tmp_path / "empty.spacy", gold=[("a b c", ["O", "O", "O"])])
    result = evaluate_pipeline(nlp, gold)
    assert result["docs"] == 1
    assert result["seqeval"]["entity"] == {}
    assert result["seqeval"]["token"]["micro avg"]["support"] == 0
    assert "ents_f" in result["spacy"]


def test_cli(model_and_data, tmp_path, capsys):
    output = tmp_path / "metrics" / "ruler.json"
    returned = main([*model_and_data, "--output", str(output), "--batch-size", "4"])
    printed = capsys.readouterr().out
    assert "ALL" in printed and "micro avg" in printed and "token-level" in printed
    saved = json.loads(output.read_text(encoding="utf8"))
    assert saved["spacy"]["ents_f"] == pytest.approx(8 / 11)
    assert saved == json.loads(json.dumps(returned))
    text = output.with_suffix(".txt").read_text(encoding="utf8")
    assert "seqeval entity-level" in text and "   PER " in text
    with pytest.raises(SystemExit):
        main([*model_and_data, "--output", str(tmp_path / "x.txt")])


def test_gold_docs_without_entity_annotation_are_skipped_like_spacy(tmp_path):
    nlp = make_ruler_nlp()
    nlp.to_disk(tmp_path / "model")
    db = DocBin().from_disk(write_gold(nlp, tmp_path / "gold.spacy"))
    db.add(Doc(nlp.vocab, words="Reuters met John Smith .".split()))  # no NER annotation
    db.to_disk(tmp_path / "mixed.spacy")
    with pytest.warns(UserWarning, match="1 of 4 docs have no entity annotation"):
        result = evaluate_pipeline(str(tmp_path / "model"), str(tmp_path / "mixed.spacy"))
    assert (result["docs"], result["docs_scored"]) == (4, 3)
    micro = result["seqeval"]["entity"]["micro avg"]
    assert micro["precision"] == pytest.approx(result["spacy"]["ents_p"]) == pytest.approx(0.8)
    DocBin(docs=[Doc(nlp.vocab, words=["x"])]).to_disk(tmp_path / "bare.spacy")
    with pytest.raises(ValueError, match="no document .* has entity annotation"):
        evaluate_pipeline(str(tmp_path / "model"), str(tmp_path / "bare.spacy"))


def test_protocols_are_labelled(result):
    assert result["protocol"] == "raw_text"
    assert list(result["other_protocols"]) == ["gold_tokens", "gold_sentences"]
    for scores in result["other_protocols"].values():
        assert set(scores) == set(result) - {"protocol", "other_protocols"}
    # The ruler's gold docs are tokenized as spaCy tokenizes their text: all protocols agree.
    assert result["other_protocols"]["gold_tokens"]["spacy"]["ents_f"] == pytest.approx(8 / 11)


def _gold_on_other_tokens(nlp, path):
    """Gold docs whose tokens are not the tokenizer's ("Reuters" is "Reu" + "ters",
    "Monday." and "money." one token each) and whose sentences the gold marks: raw text
    has neither."""
    db = DocBin()
    for text, ents in TRAIN_DATA:
        words = text.split()
        spaces = [True] * (len(words) - 1) + [False]
        if all(end < len(text) - 2 for _, end, _ in ents):  # the last word is no entity's
            words[-2:], spaces[-2:] = [words[-2] + words[-1]], [False]
        if words[0] == "Reuters":
            words[:1], spaces[:1] = ["Reu", "ters"], [False, True]
        doc = Doc(nlp.vocab, words=words, spaces=spaces)
        doc[0].is_sent_start = True
        doc.ents = [doc.char_span(start, end, label) for start, end, label in ents]
        db.add(doc)
    db.to_disk(path)
    return path


def _spacy_evaluate_f(model, gold) -> float:
    printed = subprocess.run(
        [sys.executable, "-m", "spacy", "evaluate", str(model), str(gold)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return float(re.search(r"NER F\s+([\d.]+)", printed).group(1))


def test_raw_text_f1_is_what_spacy_evaluate_prints(saved, tmp_path):
    """On the session's trained ctx_ner: `spacy evaluate MODEL DATA` (no flags) prints the
    raw-text F1."""
    nlp = spacy.load(saved)
    gold = _gold_on_other_tokens(nlp, tmp_path / "gold.spacy")
    result = evaluate_pipeline(nlp, gold)
    assert 100 * result["spacy"]["ents_f"] == pytest.approx(
        _spacy_evaluate_f(saved, gold), abs=0.005
    )
    assert result["tokens"] == 22  # the gold docs' tokens, whatever the pipeline's are


def test_raw_text_is_not_gold_tokens(tmp_path):
    """An entity_ruler that knows every name finds "Reuters" in the text but not on the
    gold tokens "Reu" "ters": raw text scores 1.0, as `spacy evaluate` prints, and the
    gold-token protocols miss one of seven entities."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [
            {"label": label, "pattern": text[start:end]}
            for text, ents in TRAIN_DATA
            for start, end, label in ents
        ]
    )
    nlp.to_disk(tmp_path / "ruler")
    gold = _gold_on_other_tokens(nlp, tmp_path / "gold.spacy")
    result = evaluate_pipeline(tmp_path / "ruler", gold)
    assert result["spacy"]["ents_f"] == pytest.approx(1.0)
    assert _spacy_evaluate_f(tmp_path / "ruler", gold) == pytest.approx(100.0)
    for protocol in ("gold_tokens", "gold_sentences"):
        scores = result["other_protocols"][protocol]["spacy"]
        assert (scores["ents_p"], scores["ents_r"]) == pytest.approx((1.0, 6 / 7))


def test_protocol_choice_and_errors(model_and_data):
    only = evaluate_pipeline(*model_and_data, protocols=["gold_sentences"])
    assert only["protocol"] == "gold_sentences" and only["other_protocols"] == {}
    with pytest.raises(ValueError, match="unknown protocol 'gold'"):
        evaluate_pipeline(*model_and_data, protocols=["gold"])
    with pytest.raises(ValueError, match="no protocol"):
        evaluate_pipeline(*model_and_data, protocols=[])


def test_gold_labels_the_pipeline_does_not_predict_warn_with_counts(tmp_path):
    nlp = make_ruler_nlp()  # predicts PER, LOC, ORG
    gold = [("Mary saw Paris .", ["B-MISC", "O", "B-LOC", "O"]),
            ("Paris and Rome .", ["B-LOC", "O", "B-MISC", "O"])]  # fmt: skip
    path = write_gold(nlp, tmp_path / "gold.spacy", gold)
    with pytest.warns(UnknownLabelsWarning, match=r"gold\.spacy: 2 gold entities .*MISC \(2\)"):
        result = evaluate_pipeline(nlp, path, protocols=["raw_text"])
    assert result["spacy"]["ents_r"] == pytest.approx(2 / 4)
    known = list(DocBin().from_disk(write_gold(nlp, tmp_path / "ok.spacy")).get_docs(nlp.vocab))
    assert warn_unknown_labels(nlp, known, "ok.spacy") == {}
