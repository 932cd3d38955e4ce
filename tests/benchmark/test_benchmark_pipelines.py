"""The benchmarked pipelines: (a) ctx_ner, new or loaded, (c) the bare encoder, and the
runners that time them."""

import pytest
import spacy
from util import encoder_of

from spacy_ctxext.benchmark.cli import parse_args
from spacy_ctxext.benchmark.pipelines import (
    bare_encoder,
    ctx_ner_pipeline,
    init_examples,
    pipe_runner,
)
from spacy_ctxext.benchmark.texts import synthetic_text
from spacy_ctxext.models.encoder_layer import get_net, plan_docs


def test_init_examples_hold_the_marked_entities():
    examples = init_examples(spacy.blank("en"))
    assert len(examples) == 4
    first = examples[0].reference
    assert [t.text for t in first][:3] == ["John", "Smith", "flew"]
    assert [(e.text, e.label_) for e in first.ents] == [
        ("John Smith", "PER"),
        ("London", "LOC"),
        ("Paris", "LOC"),
        ("Reuters", "ORG"),
    ]
    assert ("United Nations", "ORG") in [(e.text, e.label_) for e in examples[2].reference.ents]
    assert all(not eg.predicted.ents for eg in examples)


def test_random_head_is_the_same_in_every_process(tiny_bert):
    args = parse_args(["--encoder", tiny_bert, "--seed", "3"])
    text = synthetic_text(60, seed=0)
    first, second = (ctx_ner_pipeline(args, tiny_bert)(text) for _ in range(2))
    assert [t.ent_iob_ + t.ent_type_ for t in first] == [t.ent_iob_ + t.ent_type_ for t in second]
    assert first.spans["ctx_ner"].attrs["scores"] == second.spans["ctx_ner"].attrs["scores"]


def test_window_settings_reach_new_and_loaded_pipelines(tiny_bert, saved):
    for extra in ([], ["--model", str(saved)]):
        args = parse_args(["--encoder", tiny_bert, "--window", "64", "--context", "0"] + extra)
        encoder = encoder_of(ctx_ner_pipeline(args, tiny_bert))
        assert (encoder.attrs["window"], encoder.attrs["context"]) == (64, 0)
    too_long = ["--encoder", tiny_bert, "--model", str(saved), "--window", "4096"]
    with pytest.raises(ValueError, match="positions"):
        ctx_ner_pipeline(parse_args(too_long), tiny_bert)


def test_runners_count_the_words_of_their_texts(trained_nlp):
    texts = [synthetic_text(50, seed) for seed in range(3)]
    n_tokens = [len(trained_nlp.make_doc(t)) for t in texts]
    run = pipe_runner(trained_nlp, texts, batch_size=2)
    assert run() == sum(n_tokens)
    assert run(1) == n_tokens[0]  # a warm-up on the first texts
    assert bare_encoder(trained_nlp, texts, batch_size=2)() == sum(n_tokens)


@pytest.fixture
def encoder_calls(trained_nlp):
    """The input shapes of each call of the session net's HF encoder during the test."""
    calls = []
    hook = get_net(encoder_of(trained_nlp)).encoder.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    yield calls
    hook.remove()


def test_bare_encoder_runs_ctx_ner_planned_batches(trained_nlp, usage_settings, encoder_calls):
    usage_settings(window=32, context=4, batch_wordpieces=64)
    texts = [synthetic_text(80, seed) for seed in range(3)]
    docs = [trained_nlp.make_doc(t) for t in texts]
    planned = [plan_docs(encoder_of(trained_nlp), docs[i : i + 2]).batches for i in (0, 2)]
    shapes = [tuple(b.input_ids.shape) for batches in planned for b in batches]
    run = bare_encoder(trained_nlp, texts, batch_size=2)
    run(2)
    assert encoder_calls == shapes[:2]  # the warm-up: the first two calls only
    encoder_calls.clear()
    run()
    assert encoder_calls == shapes and len(shapes) > 3
