"""Benchmark texts: deterministic synthetic English, or the texts of a corpus file."""

import spacy
from spacy.tokens import DocBin

from spacy_ctxext.benchmark.texts import NAMES, load_texts, synthetic_text


def test_synthetic_text_is_deterministic_english_like():
    text = synthetic_text(300, seed=3)
    assert text == synthetic_text(300, seed=3) != synthetic_text(300, seed=4)
    assert len(text.split()) == 300
    assert "\n\n" in text and text.endswith(".") and text[0].isupper()
    assert any(name in text for name in NAMES if " " in name)  # multi-word names, whole


def test_load_texts_synthetic_or_from_a_docbin(tmp_path):
    assert load_texts(None, 2, 40, seed=5) == [synthetic_text(40, 5), synthetic_text(40, 6)]
    assert len(load_texts(None, None, 10, seed=0)) == 120  # the default number of docs
    nlp = spacy.blank("en")
    texts = ["First doc here.", "Second one.", "Third."]
    DocBin(docs=[nlp(t) for t in texts]).to_disk(tmp_path / "docs.spacy")
    assert load_texts(str(tmp_path / "docs.spacy"), 2, 0, seed=0) == texts[:2]
    assert load_texts(str(tmp_path / "docs.spacy"), None, 0, seed=0) == texts


def test_load_texts_from_a_conll_file(tmp_path):
    conll = "-DOCSTART- O\n\nEU B-ORG\nrejects O\n\n-DOCSTART- O\n\nJapan B-LOC\nwins O\n"
    (tmp_path / "two.conll").write_text(conll, encoding="utf8")
    assert load_texts(str(tmp_path / "two.conll"), None, 0, seed=0) == ["EU rejects", "Japan wins"]
    assert load_texts(str(tmp_path / "two.conll"), 1, 0, seed=0) == ["EU rejects"]
