"""spacy_ctxext.training.conll on the real CoNLL-2003 and LitBank files: the counts of their
README.md files, sentences as in the files (skipped where the data is absent)."""

import os
import time
import warnings
from pathlib import Path

import pytest
import spacy
from util import REPO

from spacy_ctxext.training.conll import ConllWarning, convert, count_docbin, read_conll

DATA_DIR = Path(os.environ.get("CTXEXT_DATA_DIR", REPO.parent / "shared" / "data"))

# Counts from the README.md files next to the data (recomputed there and checked against the
# official CoNLL-2003 statistics), so a conversion bug cannot hide behind a self-made number.
SIZES = {  # docs, sentences, tokens
    "conll2003/train.conll": (946, 14041, 203621),
    "conll2003/dev.conll": (216, 3250, 51362),
    "conll2003/test.conll": (231, 3453, 46435),
    "litbank/train.conll": (70, 6295, 146209),
    "litbank/dev.conll": (10, 702, 20395),
}
ENTITIES = {
    "conll2003/train.conll": {"PER": 6600, "LOC": 7140, "ORG": 6321, "MISC": 3438},
    "conll2003/dev.conll": {"PER": 1842, "LOC": 1837, "ORG": 1341, "MISC": 922},
    "conll2003/test.conll": {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702},
    "litbank/train.conll": {
        "PER": 5616,
        "FAC": 1400,
        "GPE": 432,
        "LOC": 729,
        "VEH": 116,
        "ORG": 44,
    },
    "litbank/dev.conll": {"PER": 883, "FAC": 135, "GPE": 56, "LOC": 53, "VEH": 17, "ORG": 13},
}


def data_file(name: str) -> Path:
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"{path} not found (set CTXEXT_DATA_DIR to the folder holding conll2003/)")
    return path


@pytest.fixture(scope="module")
def vocab():
    return spacy.blank("en").vocab


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Convert each data file once, with any ConllWarning turned into an error."""
    results = {}

    def get(name: str):
        if name not in results:
            source = data_file(name)
            output = tmp_path_factory.mktemp("docbin") / (source.stem + ".spacy")
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConllWarning)
                counts = convert(source, output)
            results[name] = (counts, output, time.perf_counter() - started)
        return results[name]

    return get


@pytest.mark.parametrize("name", sorted(SIZES))
def test_counts_match_readme(converted, name):
    docs, sentences, tokens = SIZES[name]
    by_label = ENTITIES[name]
    counts, output, _ = converted(name)
    assert counts == {
        "docs": docs,
        "sentences": sentences,
        "tokens": tokens,
        "entities": sum(by_label.values()),
        "entities_by_label": dict(sorted(by_label.items())),
    }
    # The saved DocBin must give the same numbers back.
    assert count_docbin(output) == counts


def test_conll_test_totals(converted):
    counts, _, _ = converted("conll2003/test.conll")
    assert counts["entities"] == 5648
    assert counts["sentences"] == 3453


def test_conll_train_converts_fast(converted):
    _, _, seconds = converted("conll2003/train.conll")
    print(f"CoNLL-2003 train conversion took {seconds:.2f} s")
    assert seconds < 20


def file_sentences(path: Path):
    """Sentences as lists of words, parsed independently of convert.py."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf8").splitlines() + [""]:
        columns = line.split()
        if columns and columns[0] != "-DOCSTART-":
            current.append(columns[0])
        elif current:
            sentences.append(current)
            current = []
    return sentences


@pytest.mark.parametrize("name", ["conll2003/test.conll", "litbank/dev.conll"])
def test_doc_sents_equal_file_sentences(vocab, name):
    path = data_file(name)
    docs = list(read_conll(path, vocab))
    assert all(doc.has_annotation("SENT_START") and doc.has_annotation("ENT_IOB") for doc in docs)
    doc_sentences = [[t.text for t in sent] for doc in docs for sent in doc.sents]
    assert doc_sentences == file_sentences(path)
    assert len(doc_sentences) == SIZES[name][1]
    assert all(doc[-1].whitespace_ == "" for doc in docs)
    assert all(t.whitespace_ == " " for doc in docs for t in doc[:-1])


def test_conll_test_first_document(vocab):
    doc = next(read_conll(data_file("conll2003/test.conll"), vocab))
    assert [t.text for t in doc[:4]] == ["SOCCER", "-", "JAPAN", "GET"]
    assert [(e.start, e.end, e.label_) for e in doc.ents][:2] == [(2, 3, "LOC"), (7, 8, "PER")]
