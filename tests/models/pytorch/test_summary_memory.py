"""Summary slots: streaming pooling equals pooling a doc at once, docs stay apart, it is
saved, and it carries what a window cannot see (a fresh one changes nothing: test_memory)."""

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
from spacy_ctxext.models.memory import MemorySettings, TokenIndex
from spacy_ctxext.models.pytorch.memory_writer import MemoryWriter
from spacy_ctxext.models.pytorch.summary_memory import SummaryMemory, SummaryWriter
from spacy_ctxext.models.pytorch.type_memory import TypeMemory

SLOTS_ONLY = {"@misc": "spacy-ctxext.DocumentMemory.v1", "type_memory": False}


def pooled_at_once(summary, vectors):
    """Slot k = softmax over all the doc's tokens of their scores under query k, times
    their values: what the streaming writer must equal."""
    weights = torch.softmax(summary.pool_scores(vectors), dim=0)
    return weights.T @ summary.value(vectors)


def streamed(summary, doc_ids, vectors, batches):
    writer = SummaryWriter(np.asarray(doc_ids), summary, torch.device("cpu"))
    for tokens in batches:
        index = torch.as_tensor(tokens)
        writer.write(vectors[index], index)
    return writer, writer.sums / writer.norm.unsqueeze(2)


def test_streaming_pooling_equals_pooling_each_doc_at_once():
    torch.manual_seed(0)
    summary = SummaryMemory(width=8, n_slots=3, key_width=4)
    vectors = 5 * torch.randn(10, 8)  # large scores: the running maxima must matter
    doc_ids = [0] * 6 + [1] * 4
    # Windows arrive in any order and mix docs: e.g. a doc's end before its start.
    _, slots = streamed(summary, doc_ids, vectors, [[4, 5, 8], [0, 1, 9], [2, 3, 6, 7]])
    torch.testing.assert_close(slots[0], pooled_at_once(summary, vectors[:6]))
    torch.testing.assert_close(slots[1], pooled_at_once(summary, vectors[6:]))


def test_a_doc_reads_only_its_own_slots():
    torch.manual_seed(0)
    summary = SummaryMemory(width=8, n_slots=2, key_width=4)
    torch.nn.init.normal_(summary.gate)
    head = torch.nn.Linear(8, 3)
    vectors = torch.randn(7, 8)
    doc_ids, batches = [0] * 3 + [1] * 4, [[0, 1, 2, 3], [4, 5, 6]]
    writer, _ = streamed(summary, doc_ids, vectors, batches)
    changed = vectors.clone()
    changed[3:] = torch.randn(4, 8)  # doc 1 is another doc now
    other, _ = streamed(summary, doc_ids, changed, batches)
    reads, other_reads = writer.read(head), other.read(head)
    assert reads.shape == (7, 3) and bool(reads.abs().sum() > 0)
    torch.testing.assert_close(reads[:3], other_reads[:3])
    assert not torch.allclose(reads[3:], other_reads[3:])


def test_settings_need_some_memory_and_take_slots():
    with pytest.raises(ValueError, match="summary_slots above 0"):
        MemorySettings(type_memory=False, summary_slots=0)
    with pytest.raises(ValueError, match="summary_slots must be 0 or more"):
        MemorySettings(summary_slots=-1)
    assert MemorySettings(type_memory=False, summary_slots=4).summary_slots == 4


@pytest.fixture(scope="module")
def trained_slots(tiny_bert):
    """Both kinds of memory, trained a few steps so that the gates are not zero."""
    with torch_threads(1):
        torch.manual_seed(0)
        memory = {"@misc": "spacy-ctxext.DocumentMemory.v1", "summary_slots": 2}
        nlp = make_memory_nlp(tiny_bert, memory={**memory, "min_count": 1})
        return train_steps(nlp, make_examples(nlp), learn_rate=1e-3, steps=5)


def test_slots_train_save_and_predict_alike_in_any_batch(trained_slots, tmp_path):
    nlp = trained_slots
    net = get_net(nlp.get_pipe("ctx_ner").model.layers[0])
    assert float(net.summary.gate.detach().abs().sum()) > 0
    assert float(net.memory.gate.detach().abs().sum()) > 0
    docs = [nlp.make_doc(t + " " + t) for t, _ in TRAIN_DATA]
    together = logits(nlp, docs)
    for a, doc in zip(together, docs):
        np.testing.assert_allclose(a, logits(nlp, [doc])[0], rtol=0, atol=1e-5)
    texts = [t for t, _ in TRAIN_DATA] * 2
    assert [entities(d) for d in nlp.pipe(texts, batch_size=2)] == [entities(nlp(t)) for t in texts]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    for a, b in zip(together, logits(loaded, docs)):
        np.testing.assert_array_equal(a, b)
    loaded_net = get_net(loaded.get_pipe("ctx_ner").model.layers[0])
    assert loaded_net.memory_settings == MemorySettings(min_count=1, summary_slots=2)


def test_slots_carry_what_the_window_cannot_see(tiny_bert):
    with torch_threads(1):
        memory = {**SLOTS_ONLY, "summary_slots": 2}
        slots = make_memory_nlp(tiny_bert, memory=memory, isolate_sentences=True)
        # Without memory, the same training stays below 0.9 (test_memory.py).
        train, test = mention_docs(slots, 32), mention_docs(slots, 40)[32:]
        train_on_mentions(slots, [Example(eg.x, eg.reference) for eg in train])
        with_slots = second_mention_accuracy(slots, test)
    assert with_slots >= 0.9


def test_reads_train_the_token_vectors_through_both_kinds():
    """Written in place, the memory still passes gradient back to every written vector."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 3)
    summary, memory = SummaryMemory(width=8, n_slots=2, key_width=4), TypeMemory(8)
    for gate in (summary.gate, memory.gate):
        torch.nn.init.normal_(gate)
    index = TokenIndex(slots=np.array([0, 1, 0, 1, -1]), doc_ids=np.zeros(5, dtype=np.int64))
    writer = MemoryWriter(index, head, torch.device("cpu"), memory, summary)
    vectors = torch.randn(5, 8, requires_grad=True)
    tokens = torch.arange(5)
    logits = torch.zeros(5, 3)
    logits[:3] = writer.write(vectors[:3], tokens[:3])
    logits[3:] = writer.write(vectors[3:], tokens[3:])
    writer.read(logits).sum().backward()
    assert vectors.grad is not None and bool((vectors.grad.abs().sum(1) > 0).all())
    assert summary.queries.grad is not None and memory.read_proj.weight.grad is not None
