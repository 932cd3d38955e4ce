"""The document memory: slots per doc, a fresh memory changes nothing, docs never read
each other's slots, it is saved with the pipeline, and it carries what windows cannot see."""

import numpy as np
import pytest
import spacy
import torch
from spacy.training import Example
from util import (
    TRAIN_DATA,
    entities,
    logits,
    make_examples,
    make_memory_nlp,
    mention_docs,
    second_mention_accuracy,
    torch_threads,
    train_on_mentions,
    train_steps,
)

from spacy_ctxext.models.encoder_layer import get_net
from spacy_ctxext.models.memory import MemorySettings, token_slots


def test_slots_are_per_doc_and_per_lower_cased_form():
    nlp = spacy.blank("en")
    a = nlp.make_doc("Paris and paris and London")
    b = nlp.make_doc("Paris again")
    slots = token_slots([a, b], min_count=2)
    # a: paris (x2) and "and" (x2) get slots; London once: none. b: nothing repeats.
    assert slots[0] == slots[2] >= 0 and slots[1] == slots[3] >= 0 and slots[0] != slots[1]
    assert slots[4] == -1 and (slots[5:] == -1).all()
    assert (token_slots([a, b], min_count=1)[5:] >= 0).all()
    assert token_slots([a, b], min_count=1)[5] != token_slots([a, b], min_count=1)[0]
    assert len(token_slots([nlp.make_doc("")], min_count=1)) == 0


def test_bad_memory_settings_say_what_to_do():
    with pytest.raises(ValueError, match="type_memory = true"):
        MemorySettings(type_memory=False)
    with pytest.raises(ValueError, match="min_count"):
        MemorySettings(min_count=0)


MEMORY = "spacy-ctxext.DocumentMemory.v1"


@pytest.mark.parametrize(
    "memory, kinds",
    [
        (None, ("memory",)),
        ({"@misc": MEMORY, "type_memory": False, "summary_slots": 4}, ("summary",)),
        ({"@misc": MEMORY, "summary_slots": 2}, ("memory", "summary")),
    ],
)
def test_fresh_memory_changes_nothing(tiny_bert, monkeypatch, memory, kinds):
    nlp = make_memory_nlp(tiny_bert, memory=memory)
    nlp.initialize(lambda: make_examples(nlp))
    net = get_net(nlp.get_pipe("ctx_ner").model.layers[0])
    assert [k for k in ("memory", "summary") if getattr(net, k) is not None] == list(kinds)
    docs = [nlp.make_doc(text * 3) for text, _ in TRAIN_DATA]
    with_memory = logits(nlp, docs)
    monkeypatch.setattr(net, "memory_settings", None)
    for a, b in zip(with_memory, logits(nlp, docs)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


@pytest.fixture(scope="module")
def trained_memory(tiny_bert):
    """A ctx_ner with memory, trained a few steps so that its gate is not zero."""
    with torch_threads(1):
        torch.manual_seed(0)
        nlp = make_memory_nlp(tiny_bert, min_count=1)
        return train_steps(nlp, make_examples(nlp), learn_rate=1e-3, steps=5)


def test_training_moves_the_gate(trained_memory):
    net = get_net(trained_memory.get_pipe("ctx_ner").model.layers[0])
    assert net.memory is not None and float(net.memory.gate.detach().abs().sum()) > 0


def test_docs_of_a_batch_never_read_each_others_memory(trained_memory, one_torch_thread):
    # One thread: with two, the batch's shape can pick another matmul blocking and move the
    # last float bit (1e-7 here, seen under `-m "not slow"`); bit-equality is the claim.
    nlp = trained_memory
    docs = [nlp.make_doc(t) for t in ("Mary met Mary in Paris .", "Paris said Mary left .")]
    together = logits(nlp, docs)
    alone = [logits(nlp, [doc])[0] for doc in docs]
    for a, b in zip(together, alone):
        np.testing.assert_array_equal(a, b)
    texts = [t for t, _ in TRAIN_DATA] * 2
    assert [entities(d) for d in nlp.pipe(texts, batch_size=2)] == [entities(nlp(t)) for t in texts]


def test_memory_is_saved_with_the_pipeline(trained_memory, tmp_path):
    nlp = trained_memory
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    docs = [nlp.make_doc(t + " " + t) for t, _ in TRAIN_DATA]
    for a, b in zip(logits(nlp, docs), logits(loaded, docs)):
        np.testing.assert_array_equal(a, b)
    net = get_net(loaded.get_pipe("ctx_ner").model.layers[0])
    assert net.memory_settings == MemorySettings(min_count=1)


def test_memory_carries_what_the_window_cannot_see(tiny_bert):
    with torch_threads(1):
        plain = spacy.blank("en")
        plain.add_pipe(
            "ctx_ner",
            config={"model": {"encoder": {"name": tiny_bert, "isolate_sentences": True}}},
        )
        memory = make_memory_nlp(tiny_bert, isolate_sentences=True)
        train, test = mention_docs(plain, 32), mention_docs(plain, 40)[32:]
        train_on_mentions(plain, train)
        train_on_mentions(memory, [Example(eg.x, eg.reference) for eg in train])
        without, with_memory = (second_mention_accuracy(n, test) for n in (plain, memory))
    assert with_memory >= 0.9 > without


def test_document_memory_is_a_misc_block():
    """A settings block, registered under @misc as spaCy's are, and there only."""
    from spacy.util import registry

    block = {"@misc": MEMORY, "min_count": 3, "summary_slots": 2}
    assert registry.resolve({"m": block})["m"] == MemorySettings(min_count=3, summary_slots=2)
    assert not registry.has("architectures", MEMORY)
