"""ctx_ner as a spaCy component: spaCy's usual checks for a trainable pipe."""

import warnings

import numpy as np
import pytest
import spacy
from conftest import TRAIN_DATA, entities, make_examples, make_nlp
from spacy.training import Example

from spacy_ctxext.bio import bio_tag_names, transition_rules


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


def test_to_bytes_round_trip_is_bitwise(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    docs = [nlp.make_doc(t) for t, _ in TRAIN_DATA]
    before = ner.model.predict(docs)
    clone = spacy.blank("en").from_config(nlp.config)
    clone.from_bytes(nlp.to_bytes())
    after = clone.get_pipe("ctx_ner").model.predict(docs)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


def test_weights_are_not_pickled(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    data = (tmp_path / "model" / "ctx_ner" / "model").read_bytes()
    # torch.save writes a zip with a data.pkl; safetensors inside msgpack does not.
    assert b"data.pkl" not in data
    assert b"PK\x03\x04" not in data


def test_pipe_equals_call(trained):
    nlp, _ = trained
    texts = [t for t, _ in TRAIN_DATA] * 3 + ["", "   ", "Mary ."]
    one_by_one = [entities(nlp(t)) for t in texts]
    for batch_size in (1, 4, 16):
        assert [entities(d) for d in nlp.pipe(texts, batch_size=batch_size)] == one_by_one


def test_empty_and_whitespace_docs(trained):
    nlp, _ = trained
    for text in ["", " ", "\n\n", " \t "]:
        doc = nlp(text)
        assert list(doc.ents) == []
        assert all(t.ent_iob_ == "O" for t in doc)
    assert list(nlp.pipe([])) == []


def test_long_doc_every_token_tagged(trained):
    nlp, _ = trained
    words = ("Mary told Peter about Paris and the bank in London . " * 2000).split()
    doc = nlp(spacy.tokens.Doc(nlp.vocab, words=words[:20000]))
    assert len(doc) == 20000
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)
    iob = [t.ent_iob_ for t in doc]
    assert "" not in iob
    # The decoded sequence is valid BIO: every I continues an entity of its type.
    for prev, tok in zip(doc[:-1], doc[1:]):
        if tok.ent_iob_ == "I":
            assert prev.ent_type_ == tok.ent_type_ and prev.ent_iob_ in ("B", "I")


def test_keep_existing_entities(tiny_bert, trained):
    nlp, _ = trained
    nlp.get_pipe("ctx_ner").cfg["overwrite"] = False
    try:
        doc = nlp.make_doc("John Smith visited New York on Monday .")
        doc.set_ents([spacy.tokens.Span(doc, 0, 2, label="ORG")])
        doc = nlp.get_pipe("ctx_ner")(doc)
        assert (doc.ents[0].text, doc.ents[0].label_) == ("John Smith", "ORG")
        assert ("New York", "LOC") in [(e.text, e.label_) for e in doc.ents]
    finally:
        nlp.get_pipe("ctx_ner").cfg["overwrite"] = True


def test_no_labels_is_a_clear_error(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = [Example.from_dict(nlp.make_doc("no entities here"), {"entities": []})]
    with pytest.raises(ValueError, match="No entity labels"):
        nlp.initialize(lambda: examples)


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


def test_tag_names_are_valid_for_decoder():
    names = bio_tag_names(["LOC", "PER"])
    allowed, start_allowed = transition_rules(names)
    assert names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert not start_allowed[names.index("I-LOC")]
    assert not allowed[names.index("O"), names.index("I-PER")]


def fixed_scores(ner, tags_by_token):
    """A model.predict stand-in: each token scores 10 for its tag in ``tags_by_token``."""

    def predict(model, docs):
        scores = [np.zeros((len(doc), len(ner.tag_names)), dtype="f") for doc in docs]
        for doc, array in zip(docs, scores):
            for token in doc:
                array[token.i, ner.tag_names.index(tags_by_token.get(token.text, "O"))] = 10.0
        return scores

    return predict


def test_whitespace_tokens_never_begin_or_end_entities(trained, monkeypatch):
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    tags = {"Mary": "B-PER", "met": "B-PER", "Peter": "B-PER", ".": "B-PER"}
    tags.update({"  ": "B-PER", "\n\n": "B-PER"})  # whatever whitespace scores, it is not B
    monkeypatch.setattr(type(ner.model), "predict", fixed_scores(ner, tags))
    doc = nlp("Mary  met\n\nPeter .")
    assert [t.ent_iob_ for t in doc if t.is_space] == ["O", "O"]
    assert [e.text for e in doc.ents] == ["Mary", "met", "Peter", "."]


def test_whitespace_inside_an_entity_continues_it(trained, monkeypatch):
    # spaCy's gold for "New\nYork" is B-LOC, I-LOC (the newline), L-LOC.
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    tags = {"New": "B-LOC", "York": "I-LOC", "Mary": "B-PER"}
    monkeypatch.setattr(type(ner.model), "predict", fixed_scores(ner, tags))
    doc = nlp("Mary \n met him in New\nYork \n .")
    assert [(e.text, e.label_) for e in doc.ents] == [("Mary", "PER"), ("New\nYork", "LOC")]
    assert [t.ent_iob_ for t in doc if t.is_space] == ["O", "I", "O"]


def test_cpu_bfloat16_is_opt_in_and_close(trained):
    nlp, _ = trained
    model = nlp.get_pipe("ctx_ner").model
    encoder = model.layers[0]
    docs = [nlp.make_doc(t) for t, _ in TRAIN_DATA]
    assert encoder.attrs["cpu_bfloat16"] is False
    fp32 = model.predict(docs)
    encoder.attrs["cpu_bfloat16"] = True
    try:
        bf16 = model.predict(docs)
    finally:
        encoder.attrs["cpu_bfloat16"] = False
    assert any(not np.array_equal(a, b) for a, b in zip(fp32, bf16))
    for a, b in zip(fp32, bf16):
        assert b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=0.1 * float(np.abs(a).max()))


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bfloat16_warns_on_cpus_without_native_bf16(trained, monkeypatch, native):
    from spacy_ctxext import precision

    nlp, _ = trained
    model = nlp.get_pipe("ctx_ner").model
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setitem(model.layers[0].attrs, "cpu_bfloat16", True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict([nlp.make_doc(TRAIN_DATA[0][0])])
    slow = [w for w in caught if issubclass(w.category, precision.CpuBfloat16Warning)]
    assert len(slow) == (0 if native else 1)
    if slow:
        assert "cpu_bfloat16 = false" in str(slow[0].message)


def test_isolate_sentences_warns_about_docs_without_sentences(tiny_bert):
    from spacy_ctxext.planning import NoSentencesWarning

    nlp = make_nlp(tiny_bert, isolate_sentences=True)
    nlp.initialize(lambda: make_examples(nlp))
    story = TRAIN_DATA[0][0] + " " + TRAIN_DATA[1][0]
    with pytest.warns(NoSentencesWarning, match="2 of 4 docs hold several sentences"):
        list(nlp.pipe([story, story + " !", "One", TRAIN_DATA[0][0]]))
    words = ["Mary", "left", ".", "Peter", "stayed", "."]
    sentenced = spacy.tokens.Doc(nlp.vocab, words=words, sent_starts=[1, 0, 0, 1, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoSentencesWarning)
        nlp(sentenced)
        nlp(spacy.tokens.Doc(nlp.vocab, words=words[:3]))  # one sentence, as in gold_preproc


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
    encoder = loaded.get_pipe("ctx_ner").model.layers[0]
    assert {key: encoder.attrs[key] for key in encoder_config} == encoder_config
    text = "John Smith visited New York on Monday . " * 4
    assert [e.label_ for e in loaded(text).ents]  # runs with 16-wordpiece windows
    plain = spacy.load(tmp_path / "model").get_pipe("ctx_ner").model.layers[0]
    assert plain.attrs["window"] == nlp.get_pipe("ctx_ner").model.layers[0].attrs["window"]
    too_long = {"components": {"ctx_ner": {"model": {"encoder": {"window": 100_000}}}}}
    with pytest.raises(ValueError, match="window=100000 needs more positions"):
        spacy.load(tmp_path / "model", config=too_long)
    blank = spacy.blank("en").from_config(loaded.config)
    blank.from_bytes(nlp.to_bytes())  # bytes too: the new config's sizes are kept
    assert blank.get_pipe("ctx_ner").model.layers[0].attrs["window"] == 16


def test_loading_without_the_model_keeps_the_config(tiny_bert, trained, tmp_path):
    nlp, _ = trained
    nlp.get_pipe("ctx_ner").to_disk(tmp_path / "ctx_ner", exclude=["vocab"])
    fresh = make_nlp(tiny_bert, window=64)
    fresh.get_pipe("ctx_ner").from_disk(tmp_path / "ctx_ner", exclude=["model", "vocab"])
    assert fresh.get_pipe("ctx_ner").labels == nlp.get_pipe("ctx_ner").labels
    assert fresh.get_pipe("ctx_ner").model.layers[0].attrs["window"] == 64
