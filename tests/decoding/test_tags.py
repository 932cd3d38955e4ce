"""From tag logits to entities: log-softmax, whitespace policy, joined decoding per doc,
confidences, and writing doc.ents (overwriting or keeping existing entities)."""

import numpy as np
import pytest
import spacy
from util import DECODE_NAMES, STORY, TRAIN_DATA, logits_for, tag_docs

from spacy_ctxext.decoding.bio import bio_tag_names, tags_to_spans, transition_rules
from spacy_ctxext.decoding.tags import (
    decode_docs,
    log_softmax,
    span_confidences,
)
from spacy_ctxext.decoding.viterbi import constrained_viterbi

NAMES = DECODE_NAMES


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def test_log_softmax_is_stable():
    scores = np.array([[1000.0, 1000.0, -np.inf], [-1e4, 0.0, 1e4]])
    result = log_softmax(scores)
    np.testing.assert_allclose(np.exp(result).sum(axis=-1), 1.0)
    np.testing.assert_allclose(result[0, :2], np.log(0.5))
    assert log_softmax(np.zeros((0, 3))).shape == (0, 3)


def test_log_softmax_in_place_only_on_floating_input():
    scores = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    expected = np.log(np.exp(scores) / np.exp(scores).sum())
    copied = log_softmax(scores)
    assert copied is not scores and scores[0, 0] == 1.0
    in_place = log_softmax(scores, inplace=True)
    assert in_place is scores and in_place.dtype == np.float32
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    ints = np.array([[1, 2, 3]])
    result = log_softmax(ints, inplace=True)
    assert result.dtype == np.float64 and ints.tolist() == [[1, 2, 3]]  # ints stay as they are


def test_span_confidences():
    names = bio_tag_names(["PER", "LOC"])  # O B-PER I-PER B-LOC I-LOC
    tags = np.array([1, 1, 2, 0, 3, 4, 4, 0, 1, 3])
    spans = tags_to_spans(tags, names)
    probs = np.full((len(tags), len(names)), 0.05)
    probs[np.arange(len(tags)), tags] = [0.9, 0.8, 0.6, 0.99, 0.7, 0.5, 0.95, 0.9, 0.4, 0.3]
    confidences = span_confidences(np.log(probs), tags, spans)
    assert confidences.dtype == np.float32
    # Per span the lowest probability of its tags: the last span ends at the last token.
    np.testing.assert_allclose(confidences, [0.9, 0.6, 0.5, 0.4, 0.3], rtol=1e-6)
    empty = span_confidences(np.zeros((0, 3)), np.zeros(0, dtype=np.int64), [])
    assert empty.shape == (0,) and empty.dtype == np.float32


def test_decode_docs_gives_each_doc_its_own_tags(nlp):
    docs = [nlp("Mary Smith"), nlp(""), nlp("York is nice")]
    logits = logits_for(docs, {"Mary": "B-PER", "Smith": "I-PER", "York": "I-PER"})
    logits[2, NAMES.index("B-PER")] = 5.0  # York: I-PER first, B-PER second
    decoded = decode_docs(docs, logits, NAMES)
    assert [d.tags.shape for d in decoded] == [(2,), (0,), (3,)]
    assert [d.log_probs.shape for d in decoded] == [(2, 7), (0, 7), (3, 7)]
    for d in decoded:
        np.testing.assert_allclose(np.exp(d.log_probs).sum(axis=1), 1.0, rtol=1e-5)
    assert [NAMES[t] for t in decoded[0].tags] == ["B-PER", "I-PER"]
    # Laid end to end, York's I-PER would continue Smith: a doc starts anew, so B-PER.
    assert [NAMES[t] for t in decoded[2].tags] == ["B-PER", "O", "O"]


def test_whitespace_tokens_never_begin_or_end_entities(nlp):
    tags = {"Mary": "B-PER", "met": "B-PER", "Peter": "B-PER", ".": "B-PER"}
    tags.update({"  ": "B-PER", "\n\n": "B-PER"})  # whatever whitespace scores, it is not B
    (doc,) = tag_docs([nlp("Mary  met\n\nPeter .")], tags)
    assert [t.text for t in doc if t.is_space] == [" ", "\n\n"]
    assert [t.ent_iob_ for t in doc if t.is_space] == ["O", "O"]
    assert [e.text for e in doc.ents] == ["Mary", "met", "Peter", "."]


def test_whitespace_inside_an_entity_continues_it(nlp):
    # spaCy's gold for "New\nYork" is B-LOC, I-LOC (the newline), L-LOC.
    tags = {"New": "B-LOC", "York": "I-LOC", "Mary": "B-PER"}
    (doc,) = tag_docs([nlp("Mary \n met him in New\nYork \n .")], tags)
    assert [(e.text, e.label_) for e in doc.ents] == [("Mary", "PER"), ("New\nYork", "LOC")]
    assert [t.ent_iob_ for t in doc if t.is_space] == ["O", "I", "O"]


def plain_predict(ner, doc):
    """One doc: log-softmax in float64, whitespace neutral but never B, constrained Viterbi."""
    logits = np.asarray(ner.model.predict([doc])[0], dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    for i in (t.i for t in doc if t.is_space):
        log_probs[i] = [-np.inf if name.startswith("B-") else 0.0 for name in ner.tag_names]
    return constrained_viterbi(log_probs, *transition_rules(ner.tag_names)), log_probs


def batch_docs(nlp):
    texts = [t for t, _ in TRAIN_DATA] + ["", "  \n ", STORY * 12, "Paris"]
    return [nlp.make_doc(t) for t in texts]


def test_batched_predict_equals_one_doc_at_a_time(trained_nlp, usage_settings):
    ner = trained_nlp.get_pipe("ctx_ner")
    usage_settings(window=32, context=4)  # STORY * 12 in many windows
    docs = batch_docs(trained_nlp)
    predictions = ner.predict(docs)
    assert len(predictions) == len(docs)
    for doc, (tags, log_probs) in zip(docs, predictions):
        expected_tags, expected_log_probs = plain_predict(ner, doc)
        np.testing.assert_array_equal(tags, expected_tags)
        np.testing.assert_allclose(log_probs, expected_log_probs, atol=1e-5)


def test_predict_leaves_the_model_outputs_untouched(trained_nlp):
    ner = trained_nlp.get_pipe("ctx_ner")
    docs = batch_docs(trained_nlp)
    scores = ner.model.predict(docs)
    before = [s.copy() for s in scores]
    ner.predict(docs)
    for a, b in zip(before, scores):
        np.testing.assert_array_equal(a, b)
