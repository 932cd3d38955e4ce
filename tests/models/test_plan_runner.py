"""Running a plan through the ContextNet: outputs do not depend on how windows are packed
into encoder calls, the inference encoder runs only at inference, and a CUDA out-of-memory
error at inference splits the call."""

import numpy as np
import pytest
import torch
from util import STORY, TRAIN_DATA, encoder_of, make_examples

from spacy_ctxext.models.encoder_layer import get_net, plan_docs
from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.models.plan_runner import run_plan
from spacy_ctxext.models.pytorch.context_net import ContextNet

STORY_2 = "Mary Smith met Peter Jones in Paris . They talked about London and Berlin . "


def make_docs(nlp):
    texts = [t for t, _ in TRAIN_DATA] + ["", "  \n ", STORY_2 * 12, "Paris"]
    return [nlp.make_doc(t) for t in texts]


def run_with_budget(nlp, set_usage, budget):
    set_usage(batch_wordpieces=budget)
    plan = plan_docs(encoder_of(nlp), make_docs(nlp))
    with torch.no_grad():
        return plan, run_plan(get_net(encoder_of(nlp)), plan, use_head=True)


def test_outputs_do_not_depend_on_how_windows_are_packed(trained_nlp, usage_settings):
    usage_settings(window=32, context=4)
    # Budget 1: every window is an encoder call of its own, without padding.
    alone_plan, alone = run_with_budget(trained_nlp, usage_settings, 1)
    packed_plan, packed = run_with_budget(trained_nlp, usage_settings, 4096)
    docs = make_docs(trained_nlp)
    assert len(alone_plan.batches) > 10 > len(packed_plan.batches)
    assert all(len(batch.input_ids) == 1 for batch in alone_plan.batches)
    assert alone.shape == (sum(len(d) for d in docs), 7)
    np.testing.assert_allclose(alone.numpy(), packed.numpy(), atol=1e-5)
    # The first doc is one window: its rows are the head on each word's first piece.
    net = get_net(encoder_of(trained_nlp))
    tokenizer = encoder_shim(encoder_of(trained_nlp)).tokenizer.hf_tokenizer
    inputs = tokenizer(docs[0].text, return_tensors="pt")
    with torch.no_grad():
        hidden = net.encoder(**inputs)[0][0]
        first_pieces = [inputs.word_ids().index(i) for i in range(len(docs[0]))]
        direct = net.head(hidden[first_pieces])
    np.testing.assert_allclose(packed[: len(docs[0])].numpy(), direct.numpy(), atol=1e-5)


def test_tokens_without_pieces_get_the_learned_empty_vector(trained_nlp):
    docs = [trained_nlp.make_doc(t) for t in ("Mary  met \u200b Peter", " ", "")]
    encoder = encoder_of(trained_nlp)
    plan = plan_docs(encoder, docs)
    net = get_net(encoder)
    with torch.no_grad():
        out = run_plan(net, plan, use_head=True)
        expected = net.head(net.empty)
    assert plan.empty_tokens.tolist() == [1, 3, 5]  # "  " (one extra space), U+200B, " "
    for token in plan.empty_tokens:
        torch.testing.assert_close(out[token], expected)


def failing_forward(limit, calls):
    """ContextNet.forward that runs out of memory above ``limit`` windows per call."""
    forward = ContextNet.forward

    def run(self, input_ids, *args, **kwargs):
        calls.append(len(input_ids))
        if len(input_ids) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, input_ids, *args, **kwargs)

    return run


def test_oom_at_inference_splits_batches_down_to_one_window(trained_nlp, monkeypatch):
    ner = trained_nlp.get_pipe("ctx_ner")
    docs = [
        trained_nlp.make_doc(STORY_2 * 40),
        trained_nlp.make_doc(""),
        trained_nlp.make_doc(STORY_2 * 3),
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
