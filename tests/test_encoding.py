"""Packing windows into encoder calls and decoding a batch of docs: the batched, in-place
paths give what a plain one-window, one-doc computation gives."""

import numpy as np
import torch
from conftest import TRAIN_DATA

from spacy_ctxext.architectures import get_net, plan_docs
from spacy_ctxext.decoding import constrained_viterbi, transition_rules
from spacy_ctxext.encoding import run_plan

STORY = "Mary Smith met Peter Jones in Paris . They talked about London and Berlin . "


def make_docs(nlp):
    texts = [t for t, _ in TRAIN_DATA] + ["", "  \n ", STORY * 12, "Paris"]
    return [nlp.make_doc(t) for t in texts]


def run_with_budget(encoder, docs, budget):
    saved = encoder.attrs["batch_wordpieces"]
    encoder.attrs["batch_wordpieces"] = budget
    try:
        plan = plan_docs(encoder, docs)
        with torch.no_grad():
            return plan, run_plan(get_net(encoder), plan, use_head=True)
    finally:
        encoder.attrs["batch_wordpieces"] = saved


def test_outputs_do_not_depend_on_how_windows_are_packed(trained):
    nlp, _ = trained
    encoder = nlp.get_pipe("ctx_ner").model.layers[0]
    trained_sizes = {key: encoder.attrs[key] for key in ("window", "context")}
    encoder.attrs.update(window=32, context=4)
    try:
        docs = make_docs(nlp)
        # Budget 1: every window is an encoder call of its own, without padding.
        alone_plan, alone = run_with_budget(encoder, docs, 1)
        packed_plan, packed = run_with_budget(encoder, docs, 4096)
    finally:
        encoder.attrs.update(trained_sizes)
    assert len(alone_plan.batches) > 10 > len(packed_plan.batches)
    assert alone.shape == (sum(len(d) for d in docs), 7)
    np.testing.assert_allclose(alone.numpy(), packed.numpy(), atol=1e-5)
    # The first doc is one window: its rows are the head on each word's first piece.
    net = get_net(encoder)
    inputs = net.tokenizer(docs[0].text, return_tensors="pt")
    with torch.no_grad():
        hidden = net.encoder(**inputs)[0][0]
        first_pieces = [inputs.word_ids().index(i) for i in range(len(docs[0]))]
        direct = net.head(hidden[first_pieces])
    np.testing.assert_allclose(packed[: len(docs[0])].numpy(), direct.numpy(), atol=1e-5)


def plain_predict(ner, doc):
    """One doc: log-softmax in float64, whitespace forced to O, constrained Viterbi."""
    logits = np.asarray(ner.model.predict([doc])[0], dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    space = np.array([t.is_space for t in doc], dtype=bool)
    log_probs[space] = -np.inf
    log_probs[space, 0] = 0.0
    return constrained_viterbi(log_probs, *transition_rules(ner.tag_names)), log_probs


def test_batched_predict_equals_one_doc_at_a_time(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    docs = make_docs(nlp)
    predictions = ner.predict(docs)
    assert len(predictions) == len(docs)
    for doc, (tags, log_probs) in zip(docs, predictions):
        expected_tags, expected_log_probs = plain_predict(ner, doc)
        np.testing.assert_array_equal(tags, expected_tags)
        np.testing.assert_allclose(log_probs, expected_log_probs, atol=1e-5)


def test_predict_leaves_the_model_outputs_untouched(trained):
    nlp, _ = trained
    ner = nlp.get_pipe("ctx_ner")
    docs = make_docs(nlp)
    scores = ner.model.predict(docs)
    before = [s.copy() for s in scores]
    ner.predict(docs)
    for a, b in zip(before, scores):
        np.testing.assert_array_equal(a, b)
