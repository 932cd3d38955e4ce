"""spacy-ctxext.GoldDocCorpus.v1: whole documents on their gold tokens and sentence starts."""

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.util import registry

WORDS = ["BRUSSELS", "1996-08-22", "The", "EU", "said", ".", "Peter", "Blackburn", "left", "."]
SENT_STARTS = [i in (0, 2, 6) for i in range(len(WORDS))]
ENTS = ["B-LOC", "O", "O", "B-ORG", "O", "O", "B-PER", "I-PER", "O", "O"]


@pytest.fixture
def corpus_path(tmp_path):
    nlp = spacy.blank("en")
    spaces = [True] * len(WORDS)  # known spaces: spaCy's Corpus then re-tokenizes the text
    doc = Doc(nlp.vocab, words=WORDS, spaces=spaces, sent_starts=SENT_STARTS, ents=ENTS)
    path = tmp_path / "train.spacy"
    DocBin(docs=[doc]).to_disk(path)
    return path


def read(reader: str, path, **settings):
    nlp = spacy.blank("en")
    corpus = registry.resolve({"c": {"@readers": reader, "path": str(path), **settings}})["c"]
    return list(corpus(nlp))


def test_whole_docs_keep_gold_tokens_and_sentence_starts(corpus_path):
    (example,) = read("spacy-ctxext.GoldDocCorpus.v1", corpus_path)
    predicted = example.predicted
    assert [t.text for t in predicted] == WORDS
    assert [t.is_sent_start for t in predicted] == SENT_STARTS
    assert not predicted.ents
    assert example.get_aligned_ner() == ["U-LOC", "O", "O", "U-ORG", "O", "O", "B-PER",
                                         "L-PER", "O", "O"]  # fmt: skip


def test_spacy_corpus_would_retokenize_and_drop_sentences(corpus_path):
    (example,) = read("spacy.Corpus.v1", corpus_path, gold_preproc=False)
    assert len(example.predicted) > len(WORDS)  # "1996-08-22" is split by spaCy's tokenizer
    assert not example.predicted.has_annotation("SENT_START")


def test_gold_preproc_gives_one_example_per_sentence(corpus_path):
    examples = read("spacy-ctxext.GoldDocCorpus.v1", corpus_path, gold_preproc=True)
    assert [[t.text for t in eg.predicted] for eg in examples] == [
        WORDS[0:2],
        WORDS[2:6],
        WORDS[6:10],
    ]


def test_limit_and_missing_path(corpus_path):
    assert len(read("spacy-ctxext.GoldDocCorpus.v1", corpus_path, limit=1)) == 1
    with pytest.raises(ValueError, match=r"paths.train"):
        registry.resolve({"c": {"@readers": "spacy-ctxext.GoldDocCorpus.v1", "path": None}})
