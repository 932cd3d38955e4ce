"""docs_from_texts: spaCy's tokenizer in worker processes gives make_doc's Docs."""

import pytest
import spacy
from util import SCRIPTS, STORY, TRAIN_DATA, entities

from spacy_ctxext.pipeline.parallel_docs import docs_from_texts

TEXTS = [t for t, _ in TRAIN_DATA] + SCRIPTS + ["", "  \n", "Don't  go\tto the U.S. café"]
ATTRS = ["ORTH", "NORM", "SPACY", "LOWER", "SHAPE", "IS_SPACE"]


@pytest.mark.slow  # starts worker processes: seconds with spawn
@pytest.mark.parametrize("start_method", [None, "spawn"])
def test_same_docs_as_make_doc_in_order(start_method):
    nlp = spacy.blank("en")
    texts = TEXTS * 5
    docs = list(docs_from_texts(nlp, texts, n_process=2, batch_size=3, start_method=start_method))
    assert [d.text for d in docs] == texts
    for doc, text in zip(docs, texts):
        expected = nlp.make_doc(text)
        assert doc.vocab is nlp.vocab
        assert doc.to_array(ATTRS).tolist() == expected.to_array(ATTRS).tolist()
    assert list(docs_from_texts(nlp, [], n_process=1)) == []


@pytest.mark.slow
def test_pipe_of_worker_docs_predicts_as_pipe_of_texts(trained_nlp):
    texts = TEXTS + [STORY * 20]
    expected = [entities(d) for d in trained_nlp.pipe(texts, batch_size=4)]
    docs = docs_from_texts(trained_nlp, texts, n_process=1, batch_size=2)
    assert [entities(d) for d in trained_nlp.pipe(docs, batch_size=4)] == expected


def test_n_process_checked():
    with pytest.raises(ValueError, match="n_process"):
        next(docs_from_texts(spacy.blank("en"), ["a"], n_process=0))
