"""ctx_ner on odd input: nothing crashes, nothing is lost. Every token gets an IOB value
and every entity is a valid span, for empty, huge, unsegmented and any-Unicode texts."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.pipeline import Sentencizer
from spacy.tokens import Span
from util import SCRIPTS, STORY, TRAIN_DATA, ZERO_PIECE_CHARS, assert_valid, encoder_of, entities

from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.tokenization.wordpieces import tokenize_docs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPACE_AND_CONTROL = ("Zs", "Zl", "Zp", "Cc", "Cf", "Mn")
CHAR_SOUP = list("abcxyz ABC .,-'\n\t\r\x00\x01\u200b\u0301\u00ad\u202e😀東مש") + [
    " Mary ",
    " Paris ",
    " London ",
]


@pytest.mark.parametrize("text", ["", " ", "\n\n\t", " " * 1000])
def test_empty_and_whitespace_only(trained_nlp, text):
    doc = trained_nlp(text)
    assert_valid(doc)
    assert list(doc.ents) == []


def test_single_200k_character_token(trained_nlp):
    doc = trained_nlp("ab" * 100_000)
    assert len(doc) == 1 and len(doc.text) == 200_000
    assert_valid(doc)


@pytest.fixture(scope="module")
def million(trained_nlp):
    """A 1,000,000-character document (spaCy's default max_length) tagged on its own."""
    return trained_nlp((STORY * (10**6 // len(STORY) + 1))[: 10**6])


@pytest.mark.slow  # a 1M-character doc
def test_million_character_document(million):
    assert len(million.text) == 10**6
    assert_valid(million)
    assert len(million.ents) > 0


@pytest.mark.parametrize("char", ZERO_PIECE_CHARS, ids=ascii)
def test_tokens_without_wordpieces(trained_nlp, char):
    doc = trained_nlp.make_doc(f"Mary {char} visited {char}{char} Paris {char}")
    backend = encoder_shim(encoder_of(trained_nlp)).tokenizer.backend
    # The premise: at least one token really has no wordpiece.
    assert (tokenize_docs(backend, [doc])[0].token_piece < 0).any()
    assert_valid(trained_nlp(doc))


@pytest.mark.parametrize("text", SCRIPTS)
def test_scripts_emoji_and_nul_bytes(trained_nlp, text):
    doc = trained_nlp(text)
    assert doc.text == text
    assert_valid(doc)


def test_long_sentence_without_punctuation(trained_nlp):
    words = STORY.replace(" .", "").split() * 500
    doc = trained_nlp(" ".join(words))
    assert len(doc) == 5000
    assert_valid(doc)


def test_with_and_without_sentence_boundaries(trained_nlp):
    text = STORY * 60
    plain = trained_nlp(text)
    with_sents = trained_nlp(Sentencizer()(trained_nlp.make_doc(text)))
    assert not plain.has_annotation("SENT_START") and with_sents.has_annotation("SENT_START")
    for doc in (plain, with_sents):
        assert_valid(doc)
        assert len(doc.ents) > 0


def preset(nlp, text):
    doc = nlp.make_doc(text)
    doc.set_ents([Span(doc, 0, 2, label="ORG")], default="missing")
    return doc


@pytest.mark.parametrize("overwrite", [False, True])
def test_preset_entities_and_overwrite(trained_nlp, overwrite, monkeypatch):
    ner = trained_nlp.get_pipe("ctx_ner")
    text = "John Smith visited New York on Monday ."
    monkeypatch.setitem(ner.cfg, "overwrite", overwrite)
    doc = ner(preset(trained_nlp, text))
    assert_valid(doc)
    if overwrite:
        assert entities(doc) == entities(trained_nlp(text))
    else:
        assert entities(doc)[0] == (0, 10, "ORG")
        assert (19, 27, "LOC") in entities(doc)


@pytest.mark.slow  # a 1M-character doc
def test_mixed_batch_equals_one_by_one(trained_nlp, odd_texts, million):
    texts = list(odd_texts.values()) + [t for t, _ in TRAIN_DATA]
    docs = [trained_nlp.make_doc(t) for t in texts]
    docs.append(Sentencizer()(trained_nlp.make_doc(STORY * 20)))
    docs.append(preset(trained_nlp, STORY))
    single = [trained_nlp(d.copy()) for d in docs]
    docs.insert(3, trained_nlp.make_doc(million.text))
    single.insert(3, million)
    batched = list(trained_nlp.pipe([d.copy() for d in docs], batch_size=64))
    for a, b in zip(single, batched):
        assert_valid(b)
        assert entities(a) == entities(b)
        assert [t.ent_iob_ for t in a] == [t.ent_iob_ for t in b]
        np.testing.assert_allclose(
            a.spans["ctx_ner"].attrs["scores"], b.spans["ctx_ner"].attrs["scores"], atol=1e-5
        )


@pytest.mark.slow  # hypothesis
@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    text=st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
        st.text(st.characters(whitelist_categories=SPACE_AND_CONTROL), max_size=50),
        st.lists(st.sampled_from(CHAR_SOUP), max_size=80).map("".join),
    )
)
def test_random_unicode_never_crashes(trained_nlp, text):
    doc = trained_nlp(text)
    assert doc.text == text
    assert_valid(doc)
