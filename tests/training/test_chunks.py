"""spacy-ctxext.ContextChunkCorpus.v1: cores of whole sentences with context that has no loss."""

import warnings

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.util import registry

from spacy_ctxext.pipeline.gold import bio_targets, warn_unaligned
from spacy_ctxext.training.chunks import core_bounds, doc_chunks

# Three sentences of 4, 3 and 5 tokens: "1996-08-22" is one gold token, five of make_doc's.
WORDS = ["BRUSSELS", "1996-08-22", "EU", "said"] + ["Peter", "Blackburn", "left"]
WORDS += ["in", "New", "York", "today", "."]
SENT_STARTS = [i in (0, 4, 7) for i in range(len(WORDS))]
ENTS = ["B-LOC", "O", "B-ORG", "O", "B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "O"]


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def gold(nlp):
    spaces = [True] * len(WORDS)
    return Doc(nlp.vocab, words=WORDS, spaces=spaces, sent_starts=SENT_STARTS, ents=ENTS)


@pytest.mark.parametrize(
    "core_tokens,expected",
    [
        (4, [(0, 4), (4, 7), (7, 12)]),
        (7, [(0, 7), (7, 12)]),
        (100, [(0, 12)]),
        (1, [(0, 4), (4, 7), (7, 12)]),
    ],
)
def test_cores_are_runs_of_whole_sentences(gold, core_tokens, expected):
    assert core_bounds(gold, core_tokens) == expected


def test_without_sentence_starts_cores_are_cut_by_tokens(nlp):
    doc = nlp.make_doc("a b c d e f g")
    assert core_bounds(doc, 3) == [(0, 3), (3, 6), (6, 7)]
    assert core_bounds(nlp.make_doc(""), 3) == []


def test_context_has_no_gold_and_the_core_keeps_its_entities(nlp, gold):
    examples = list(doc_chunks(nlp, gold, core_tokens=3, context_tokens=2))
    assert len(examples) == 3
    middle = examples[1].reference  # core "Peter Blackburn left", two tokens each side
    assert [t.text for t in middle] == ["EU", "said", "Peter", "Blackburn", "left", "in", "New"]
    assert [t.ent_iob_ for t in middle] == ["", "", "B", "I", "O", "", ""]
    assert [(e.text, e.label_) for e in middle.ents] == [("Peter Blackburn", "PER")]
    # The predicted doc is the chunk's text through make_doc, as a user's text.
    assert examples[0].predicted.text == examples[0].reference.text
    assert len(examples[0].predicted) > len(examples[0].reference)  # 1996-08-22 split
    assert examples[1].get_aligned_ner() == [None, None, "B-PER", "L-PER", "O", None, None]


def test_every_gold_entity_is_in_exactly_one_core(nlp, gold):
    for core_tokens in (1, 4, 7, 100):
        examples = doc_chunks(nlp, gold, core_tokens=core_tokens, context_tokens=3)
        found = [(e.text, e.label_) for eg in examples for e in eg.reference.ents]
        assert found == [(e.text, e.label_) for e in gold.ents]


def test_an_entity_cut_by_a_core_edge_is_missing_not_outside(nlp):
    # No sentence starts: cores of 3 tokens cut "New York" in two.
    doc = Doc(
        nlp.vocab, words="we saw New York today".split(), ents=["O", "O", "B-LOC", "I-LOC", "O"]
    )
    first, second = doc_chunks(nlp, doc, core_tokens=3, context_tokens=0)
    assert [t.ent_iob_ for t in first.reference] == ["O", "O", ""]
    assert [t.ent_iob_ for t in second.reference] == ["", "O"]


def test_the_registered_reader_reads_a_docbin(tmp_path, nlp, gold):
    path = tmp_path / "train.spacy"
    DocBin(docs=[gold, gold]).to_disk(path)
    config = {"@readers": "spacy-ctxext.ContextChunkCorpus.v1", "path": str(path),
              "core_tokens": 4, "context_tokens": 8}  # fmt: skip
    corpus = registry.resolve({"c": config})["c"]
    assert len(list(corpus(nlp))) == 6
    assert len(list(registry.resolve({"c": {**config, "limit": 1}})["c"](nlp))) == 3


def test_bad_settings_say_what_is_allowed(tmp_path):
    reader = registry.readers.get("spacy-ctxext.ContextChunkCorpus.v1")
    with pytest.raises(ValueError, match="core_tokens >= 1"):
        reader(tmp_path / "x.spacy", core_tokens=0)


def test_missing_context_is_not_reported_as_unaligned(nlp, gold):
    examples = list(doc_chunks(nlp, gold, core_tokens=3, context_tokens=2))
    truths = [bio_targets(eg, ["LOC", "ORG", "PER"], "ctx_ner") for eg in examples]
    assert sum(tag is None for tags in truths for tag in tags) > 0  # the context
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_unaligned(examples, truths, "ctx_ner")
