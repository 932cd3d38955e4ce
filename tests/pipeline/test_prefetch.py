"""nlp.pipe plans each batch in a worker thread while the one before is encoded."""

import threading

import numpy as np
import pytest
from util import SCRIPTS, STORY, TRAIN_DATA

import spacy_ctxext.pipeline.prefetch as prefetch
from spacy_ctxext.models.encoder_layer import plan_docs

TEXTS = [t for t, _ in TRAIN_DATA] * 2 + SCRIPTS + ["", " \n ", STORY * 40, "Mary ."]


@pytest.fixture
def worker(monkeypatch):
    """The worker thread on this CPU too (by default it plans only for a GPU)."""
    monkeypatch.setattr(prefetch, "use_worker", lambda encoder: True)


def annotations(doc):
    group = doc.spans["ctx_ner"]
    return [(s.start, s.end, s.label_) for s in group], group.attrs["scores"]


def pipe_annotations(nlp, monkeypatch, *, with_worker, batch_size):
    monkeypatch.setattr(prefetch, "use_worker", lambda encoder: with_worker)
    docs = list(nlp.pipe(TEXTS, batch_size=batch_size))
    assert [d.text for d in docs] == TEXTS
    return [annotations(d) for d in docs]


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_pipe_predicts_as_without_the_worker(trained_nlp, monkeypatch, batch_size):
    ner = trained_nlp.get_pipe("ctx_ner")
    alone = []
    for text in TEXTS:  # predict and set_annotations in the caller, one doc at a time
        doc = trained_nlp.make_doc(text)
        ner.set_annotations([doc], ner.predict([doc]))
        alone.append(annotations(doc))
    inline = pipe_annotations(trained_nlp, monkeypatch, with_worker=False, batch_size=batch_size)
    ahead = pipe_annotations(trained_nlp, monkeypatch, with_worker=True, batch_size=batch_size)
    assert ahead == inline  # the same plans: scores bit for bit
    # Other batches pad windows to other widths, which can move a score's last bits
    # (seen with some random inits of this tiny encoder), never a span.
    assert [spans for spans, _ in inline] == [spans for spans, _ in alone]
    for (_, scores), (_, expected) in zip(inline, alone):
        np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_plans_are_made_in_the_worker_one_batch_ahead(trained_nlp, monkeypatch, worker):
    events = []
    second_planned = threading.Event()

    def spy(encoder, docs):
        events.append(("plan", docs[0].text, threading.current_thread().name))
        if docs[0].text == "Peter .":
            second_planned.set()
        return plan_docs(encoder, docs)

    monkeypatch.setattr(prefetch, "plan_docs", spy)
    texts = ["Mary .", "Peter .", "Paris ."]
    stream = (trained_nlp.make_doc(t) for t in texts)
    out = trained_nlp.get_pipe("ctx_ner").pipe(stream, batch_size=1)
    first = next(out)
    assert first.text == "Mary ."
    # The second batch's plan was asked for before the first batch was handed out: the
    # worker makes it with nothing more pulled from `out` (it may not have begun yet when
    # `next` returns, hence the wait; had it not been submitted, the wait would time out).
    assert second_planned.wait(timeout=30)
    assert [e[1] for e in events] == ["Mary .", "Peter ."]
    assert all(e[2].startswith("ctx_ner-plan") for e in events)
    assert [d.text for d in out] == ["Peter .", "Paris ."]


@pytest.mark.parametrize("with_worker", [True, False])
def test_planning_errors_surface_in_the_caller(trained_nlp, monkeypatch, with_worker):
    monkeypatch.setattr(prefetch, "use_worker", lambda encoder: with_worker)

    def failing(encoder, docs):
        if docs[0].text == "Peter .":
            raise RuntimeError("planning failed")
        return plan_docs(encoder, docs)

    monkeypatch.setattr(prefetch, "plan_docs", failing)
    out = trained_nlp.pipe(["Mary .", "Peter .", "Paris ."], batch_size=1)
    assert next(out).text == "Mary ."
    with pytest.raises(RuntimeError, match="planning failed"):
        next(out)
    # With an error handler the failing batch goes to it and the rest goes on.
    seen = []
    ner = trained_nlp.get_pipe("ctx_ner")
    monkeypatch.setattr(ner, "get_error_handler", lambda: lambda *a: seen.append(a[2]))
    texts = [d.text for d in trained_nlp.pipe(["Mary .", "Peter .", "Paris ."], batch_size=1)]
    assert texts == ["Mary .", "Paris ."]
    assert [[d.text for d in docs] for docs in seen] == [["Peter ."]]


def test_cpu_plans_in_the_caller(trained_nlp):
    assert not prefetch.use_worker(trained_nlp.get_pipe("ctx_ner").model.layers[0])


def test_training_plans_in_the_caller(fresh, monkeypatch):
    called = []
    monkeypatch.setattr(prefetch, "planned", lambda *a: called.append(a))
    docs = [fresh.make_doc(t) for t, _ in TRAIN_DATA]
    scores, _ = fresh.get_pipe("ctx_ner").model.begin_update(docs)
    assert called == [] and len(scores) == len(docs)
    assert all(np.isfinite(s).all() for s in scores)
