"""ctx_ner as a spaCy component: spaCy's usual checks for a trainable pipe."""

import numpy as np
import pytest
import spacy
from util import TRAIN_DATA, encoder_of, entities, make_examples, make_nlp

from spacy_ctxext.planning import batch_plan as planning
from spacy_ctxext.planning.sentences import UnsentencedDocs


def test_overfits_three_sentences(trained):
    nlp, steps = trained
    assert steps < 100
    for text, ents in TRAIN_DATA:
        assert entities(nlp(text)) == ents


def test_labels_inferred_from_examples(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    assert ner.labels == ("LOC", "ORG", "PER")
    assert ner.label_data == ["LOC", "ORG", "PER"]
    assert ner.model.get_dim("nO") == 7


def test_confidences_in_span_group(trained):
    nlp, _ = trained
    doc = nlp(TRAIN_DATA[2][0])
    group = doc.spans["ctx_ner"]
    assert [(s.start, s.end, s.label_) for s in group] == [
        (e.start, e.end, e.label_) for e in doc.ents
    ]
    scores = group.attrs["scores"]
    assert len(scores) == len(doc.ents)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_save_load_same_predictions(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    texts = [t for t, _ in TRAIN_DATA] + ["New York and London said Mary Smith ."]
    for text in texts:
        a, b = nlp(text), loaded(text)
        assert entities(a) == entities(b)
        assert a.spans["ctx_ner"].attrs["scores"] == b.spans["ctx_ner"].attrs["scores"]


def test_pipe_equals_call(trained):
    nlp, _ = trained
    texts = [t for t, _ in TRAIN_DATA] * 3 + ["", "   ", "Mary ."]
    one_by_one = [entities(nlp(t)) for t in texts]
    for batch_size in (1, 4, 16):
        assert [entities(d) for d in nlp.pipe(texts, batch_size=batch_size)] == one_by_one
    assert list(nlp.pipe([])) == []


def test_labels_given_at_initialize(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    nlp.config["initialize"]["components"]["ctx_ner"] = {"labels": ["PER", "LOC", "ORG", "MISC"]}
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("ctx_ner").labels == ("PER", "LOC", "ORG", "MISC")


def test_labels_after_initialize_need_a_new_initialize(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.initialize(lambda: make_examples(nlp))
    ner = nlp.get_pipe("ctx_ner")
    assert ner.add_label("PER") == 0  # known labels are fine
    with pytest.raises(ValueError, match="E922"):
        ner.add_label("MISC")  # the head has no rows for it
    nlp.config["initialize"]["components"]["ctx_ner"] = {"labels": ["PER", "LOC", "ORG", "MISC"]}
    nlp.initialize(lambda: make_examples(nlp))
    assert ner.labels == ("LOC", "ORG", "PER", "MISC")  # the first ones, then the new one
    assert ner.model.get_dim("nO") == len(ner.tag_names) == 9
    (tags, log_probs), *_ = ner.predict([nlp.make_doc("Mary met Peter in Paris .")])
    assert log_probs.shape == (6, 9)


def test_scores_with_ner_scorer(trained):
    nlp, _ = trained
    scores = nlp.evaluate(make_examples(nlp))
    assert scores["ents_f"] == 1.0
    assert set(scores["ents_per_type"]) == {"PER", "LOC", "ORG"}


def test_isolate_sentences_warns_about_docs_without_sentences(tiny_bert, monkeypatch):
    from spacy_ctxext.planning.sentences import NoSentencesWarning

    monkeypatch.setattr(planning, "UNSENTENCED_DOCS", UnsentencedDocs())  # not yet said
    nlp = make_nlp(tiny_bert, isolate_sentences=True)
    nlp.initialize(lambda: make_examples(nlp))
    story = TRAIN_DATA[0][0] + " " + TRAIN_DATA[1][0]
    # Which docs count is test_planning's: here, that the setting reaches the planning.
    with pytest.warns(NoSentencesWarning, match="2 of 4 docs hold several sentences"):
        list(nlp.pipe([story, story + " !", "One", TRAIN_DATA[0][0]]))


def test_loss_weighs_every_token_the_same_however_docs_are_batched(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    examples = make_examples(nlp)
    scores = ner.model.predict([eg.x for eg in examples])
    _, alone = ner.get_loss(examples[:1], scores[:1])
    _, batched = ner.get_loss(examples, scores)
    np.testing.assert_allclose(alone[0], batched[0], rtol=1e-6)
    # The gradient of a token is softmax(scores) - one-hot(gold tag), not scaled by length.
    gold = [ner.tag_names.index(t) for t in ner._bio_targets(examples[0])]
    probs = ner.model.ops.softmax(scores[0])
    np.testing.assert_allclose(alone[0], probs - np.eye(len(ner.tag_names))[gold], atol=1e-6)


def test_config_given_to_spacy_load_wins_over_saved_settings(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    encoder_config = {"window": 16, "context": 2, "batch_wordpieces": 64}
    config = {"components": {"ctx_ner": {"model": {"encoder": encoder_config}}}}
    loaded = spacy.load(tmp_path / "model", config=config)
    encoder = encoder_of(loaded)
    assert {key: encoder.attrs[key] for key in encoder_config} == encoder_config
    text = "John Smith visited New York on Monday . " * 4
    assert [e.label_ for e in loaded(text).ents]  # runs with 16-wordpiece windows
    plain = encoder_of(spacy.load(tmp_path / "model"))
    assert plain.attrs["window"] == encoder_of(nlp).attrs["window"]
    too_long = {"components": {"ctx_ner": {"model": {"encoder": {"window": 100_000}}}}}
    with pytest.raises(ValueError, match="window=100000 needs more positions"):
        spacy.load(tmp_path / "model", config=too_long)
    blank = spacy.blank("en").from_config(loaded.config)
    blank.from_bytes(nlp.to_bytes())  # bytes too: the new config's sizes are kept
    assert encoder_of(blank).attrs["window"] == 16


def test_loading_without_the_model_keeps_the_config(tiny_bert, trained, tmp_path):
    nlp, _ = trained
    nlp.get_pipe("ctx_ner").to_disk(tmp_path / "ctx_ner", exclude=["vocab"])
    fresh = make_nlp(tiny_bert, window=64)
    fresh.get_pipe("ctx_ner").from_disk(tmp_path / "ctx_ner", exclude=["model", "vocab"])
    assert fresh.get_pipe("ctx_ner").labels == nlp.get_pipe("ctx_ner").labels
    assert encoder_of(fresh).attrs["window"] == 64
