"""Packing windows into encoder calls and decoding a batch of docs: the batched, in-place
paths give what a plain one-window, one-doc computation gives."""

import numpy as np
import pytest
import torch
from conftest import TRAIN_DATA, make_examples

from spacy_ctxext import planning
from spacy_ctxext.architectures import get_net, plan_docs
from spacy_ctxext.bio import transition_rules
from spacy_ctxext.context_net import ContextNet, run_plan
from spacy_ctxext.viterbi import constrained_viterbi
from spacy_ctxext.wordpieces import load_backend, special_tokens

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
    """One doc: log-softmax in float64, whitespace neutral but never B, constrained Viterbi."""
    logits = np.asarray(ner.model.predict([doc])[0], dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    for i in (t.i for t in doc if t.is_space):
        log_probs[i] = [-np.inf if name.startswith("B-") else 0.0 for name in ner.tag_names]
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


def test_only_long_batches_trim_the_heap(trained, monkeypatch):
    nlp, _ = trained
    encoder = nlp.get_pipe("ctx_ner").model.layers[0]
    net = get_net(encoder)
    trims = []
    monkeypatch.setattr(planning, "trim_heap", lambda: trims.append(1))
    docs = make_docs(nlp)
    n_tokens = sum(len(doc) for doc in docs)
    for threshold, expected in ((n_tokens + 1, []), (n_tokens, [1]), (None, [])):
        trims.clear()
        planning.plan_batch(
            docs,
            net.backend,
            specials=net.specials,
            pad_id=net.pad_id,
            window=64,
            context=8,
            batch_wordpieces=256,
            trim_after_tokens=threshold,
        )
        assert trims == expected


def failing_forward(limit, calls):
    """ContextNet.forward that runs out of memory above ``limit`` windows per call."""
    forward = ContextNet.forward

    def run(self, input_ids, *args):
        calls.append(len(input_ids))
        if len(input_ids) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, input_ids, *args)

    return run


def test_oom_at_inference_splits_batches_down_to_one_window(trained_nlp, monkeypatch):
    ner = trained_nlp.get_pipe("ctx_ner")
    docs = [
        trained_nlp.make_doc(STORY * 40),
        trained_nlp.make_doc(""),
        trained_nlp.make_doc(STORY * 3),
    ]
    expected, expected_tags = ner.model.predict(docs), ner.predict(docs)
    calls = []
    monkeypatch.setattr(ContextNet, "forward", failing_forward(1, calls))
    got, tags = ner.model.predict(docs), ner.predict(docs)
    assert max(calls) > 2 and 1 in calls
    for x, y in zip(expected, got):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    for (a, _), (b, _) in zip(expected_tags, tags):
        np.testing.assert_array_equal(a, b)


def test_oom_on_a_single_window_names_the_settings(trained_nlp, monkeypatch):
    ner = trained_nlp.get_pipe("ctx_ner")
    monkeypatch.setattr(ContextNet, "forward", failing_forward(0, []))
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"single window.*`window`") as err:
        ner.model.predict([trained_nlp.make_doc(STORY * 20)])
    assert "batch_wordpieces" in str(err.value)


def test_oom_in_training_is_raised_with_advice(fresh, monkeypatch):
    calls = []
    monkeypatch.setattr(ContextNet, "forward", failing_forward(0, calls))
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"training.*`batch_wordpieces`"):
        fresh.update(make_examples(fresh))
    # No retry in training: the first failed call is reported.
    assert len(calls) == 1


def test_special_tokens_come_from_the_backend(tiny_bert):
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    bert = AutoTokenizer.from_pretrained(tiny_bert)
    cls, sep = bert.cls_token_id, bert.sep_token_id
    assert special_tokens(load_backend(bert)) == ([cls], [sep])
    # A generic fast tokenizer (no Python subclass, as for ModernBERT): only the Rust
    # post-processor knows its specials; build_inputs_with_special_tokens adds none.
    rust = Tokenizer.from_str(bert.backend_tokenizer.to_str())
    rust.post_processor = TemplateProcessing(
        single="[SEP] [CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    generic = PreTrainedTokenizerFast(tokenizer_object=rust)
    assert generic.build_inputs_with_special_tokens([7]) == [7]
    assert special_tokens(load_backend(generic)) == ([sep, cls], [sep])
    assert generic("paris")["input_ids"][:2] == [sep, cls]
