"""Fixtures: tiny random BERT encoders saved offline, and a ctx_ner trained on them.

Session and module fixtures are shared: tests change them only through ``monkeypatch``
(``setitem`` on ``cfg``/``attrs``), which restores them. Plain helpers are in util.py.
"""

import importlib.util

import pytest
import spacy
from util import (
    SCRIPTS,
    STORY,
    TRAIN_DATA,
    ZERO_PIECE_CHARS,
    encoder_of,
    entities,
    make_examples,
    make_nlp,
    save_tiny_bert,
    torch_threads,
)

from spacy_ctxext.models.encoder_layer import apply_usage_settings
from spacy_ctxext.tokenization.wordpieces import load_backend

# Fixtures whose tests take more than a few seconds (a 10**6-character document).
SLOW_FIXTURES = {"million"}
HAS_SPACY_TRANSFORMERS = importlib.util.find_spec("spacy_transformers") is not None
NO_SPACY_TRANSFORMERS = pytest.mark.skip(
    reason="needs the spacy-transformers extra (pip install 'spacy-ctxext[spacy-transformers]', "
    "which pins transformers < 4.53.3); .ci/run runs these in a second environment"
)


def pytest_collection_modifyitems(items):
    """Mark slow tests in one place, so ``pytest -m "not slow"`` is a quick loop: property
    tests (hypothesis), tests on the slow fixtures and the Ray tests (a local cluster
    each), beside those marked by hand (``spacy package`` and other subprocesses,
    ``n_process``)."""
    for item in items:
        hypothesis = getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
        ray = "distributed" in item.path.parts
        if hypothesis or ray or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if "spacy_transformers" in item.keywords and not HAS_SPACY_TRANSFORMERS:
            item.add_marker(NO_SPACY_TRANSFORMERS)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT with 128 positions and a small WordPiece vocab."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny_bert")))


@pytest.fixture(scope="session")
def tiny_bert_64(tmp_path_factory) -> str:
    """The same encoder with only 64 positions, for position-extension tests."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny_bert_64"), max_position_embeddings=64))


@pytest.fixture(scope="session")
def trained(tiny_bert):
    """A ctx_ner overfit on three sentences (the test asserts it gets there)."""
    nlp = make_nlp(tiny_bert)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    steps = 0
    while steps < 100 and any(entities(nlp(text)) != ents for text, ents in TRAIN_DATA):
        nlp.update(examples, sgd=optimizer)
        steps += 1
    return nlp, steps


@pytest.fixture(scope="session")
def trained_nlp(trained):
    """The session's overfit ctx_ner, without its step count."""
    return trained[0]


@pytest.fixture(scope="module")
def saved(trained_nlp, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model"
    trained_nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def odd_texts():
    return {
        "empty": "",
        "whitespace": " \n\t  \r\n ",
        "long_token": "ab" * 100_000,
        "zero_pieces": "Mary " + " ".join(ZERO_PIECE_CHARS) + " Paris \u200b\u0301 .",
        "no_punctuation": " ".join(STORY.replace(" .", "").split() * 500),
        **{f"script_{i}": text for i, text in enumerate(SCRIPTS)},
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on two busy cores, OpenMP's two threads make this tiny encoder
    ~10x slower (1M characters: 17 s instead of 1.7 s while a training runs). Yields the
    thread count before."""
    with torch_threads(1) as before:
        yield before


@pytest.fixture(scope="module")
def fresh(tiny_bert):
    """An initialized, untrained ctx_ner for tests that update or fail (its weights may move)."""
    nlp = make_nlp(tiny_bert)
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


@pytest.fixture
def usage_settings(trained_nlp, monkeypatch):
    """``apply_usage_settings`` on the session's encoder (checked as at initialize); every
    attr is restored after the test."""
    encoder = encoder_of(trained_nlp)
    for key, value in list(encoder.attrs.items()):
        monkeypatch.setitem(encoder.attrs, key, value)
    return lambda **usage: apply_usage_settings(encoder, usage)


@pytest.fixture(scope="module")
def nlp():
    """A blank English pipeline (tokenizer only)."""
    return spacy.blank("en")


@pytest.fixture(scope="session")
def tiny_backend(tiny_bert):
    """The tiny BERT's Rust tokenizer, as ctx_ner uses it (``load_backend``)."""
    from transformers import AutoTokenizer

    return load_backend(AutoTokenizer.from_pretrained(tiny_bert, use_fast=True))
