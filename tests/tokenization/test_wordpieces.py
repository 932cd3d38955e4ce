"""Whole-document tokenization and the alignment of wordpieces to spaCy tokens."""

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc

from spacy_ctxext.tokenization.wordpieces import (
    DocPieces,
    load_backend,
    special_tokens,
    tokenize_by_offsets,
    tokenize_docs,
)

TEXTS = [
    "John Smith said on Monday that the bank was in New York.",
    "Mary  went to   Paris\n\nand Berlin.",
    "The company\u200bsaid it \u200b was \x00 told \x07 by Reuters.",
    "Don't stop: 12.5 percent of 1,000,000 shares!",
    "Zyxwvut qqqq Ümlaut café naïve 東京 emoji \U0001f600 here.",
]


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert, use_fast=True)


@pytest.fixture(scope="module")
def backend(hf_tokenizer):
    return load_backend(hf_tokenizer)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def reference_encoding(hf_tokenizer, text):
    return hf_tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)


def check_alignment(doc: Doc, pieces: DocPieces, hf_tokenizer) -> None:
    enc = reference_encoding(hf_tokenizer, doc.text)
    # Nothing dropped, nothing added.
    assert pieces.ids.tolist() == enc.ids
    assert len(pieces.token_piece) == len(doc)
    for token, piece in zip(doc, pieces.token_piece.tolist()):
        if piece < 0:
            # Only tokens the tokenizer turns into nothing have no piece.
            assert reference_encoding(hf_tokenizer, token.text).ids == [], repr(token.text)
            continue
        start, end = enc.offsets[piece]
        # The piece overlaps the token's characters.
        assert start < token.idx + len(token.text) and end > token.idx, (token.text, piece)
    # Tokens that do yield pieces always get one.
    for token, piece in zip(doc, pieces.token_piece.tolist()):
        if token.text.strip() and reference_encoding(hf_tokenizer, token.text).ids:
            assert piece >= 0, repr(token.text)
    # Token pieces never go backwards.
    real = pieces.token_piece[pieces.token_piece >= 0]
    assert np.all(np.diff(real) >= 0)
    # Cut points are sorted, unique and inside [0, W].
    for cuts in (pieces.token_starts, pieces.sentence_starts):
        assert np.all(np.diff(cuts) > 0)
        assert np.all((cuts >= 0) & (cuts <= len(pieces)))
    assert set(pieces.sentence_starts.tolist()) <= set(pieces.token_starts.tolist())


def test_backend_is_untruncated_copy(tiny_bert):
    from transformers import AutoTokenizer

    truncating = AutoTokenizer.from_pretrained(tiny_bert)  # its own: not the shared one
    truncating.backend_tokenizer.enable_truncation(8)
    backend = load_backend(truncating)
    assert backend is not truncating.backend_tokenizer
    assert backend.truncation is None
    assert backend.padding is None
    assert len(backend.encode(" ".join(["the"] * 50), add_special_tokens=False).ids) == 50
    assert truncating.backend_tokenizer.truncation["max_length"] == 8  # the original keeps it


def test_slow_tokenizer_rejected():
    class Slow:
        pass

    with pytest.raises(ValueError, match="fast"):
        load_backend(Slow())


def test_alignment_of_assorted_texts(nlp, backend, hf_tokenizer):
    docs = [nlp(text) for text in TEXTS]
    pieces = tokenize_docs(backend, docs)
    assert len(pieces) == len(docs)
    for doc, p in zip(docs, pieces):
        check_alignment(doc, p, hf_tokenizer)


def test_known_alignment(nlp, backend, hf_tokenizer):
    doc = nlp("john smith said")
    (p,) = tokenize_docs(backend, [doc])
    assert hf_tokenizer.convert_ids_to_tokens(p.ids.tolist()) == ["john", "smith", "said"]
    assert p.token_piece.tolist() == [0, 1, 2]
    assert p.token_starts.tolist() == [0, 1, 2]
    # No sentence annotation: only the start of the doc.
    assert p.sentence_starts.tolist() == [0]


def test_subword_token_points_at_its_first_piece(nlp, backend, hf_tokenizer):
    doc = nlp("the zq bank")
    (p,) = tokenize_docs(backend, [doc])
    assert hf_tokenizer.convert_ids_to_tokens(p.ids.tolist()) == ["the", "z", "##q", "bank"]
    assert p.token_piece.tolist() == [0, 1, 3]
    assert p.token_starts.tolist() == [0, 1, 3]


@pytest.mark.parametrize(
    "text,empty",
    [
        ("john  smith", " "),
        ("john \u200b smith", "\u200b"),
        ("john \x00 smith", "\x00"),
        ("john \x07 smith", "\x07"),
        ("john \n\n smith", "\n\n "),
    ],
)
def test_tokens_without_pieces(nlp, backend, hf_tokenizer, text, empty):
    doc = nlp(text)
    assert [t.text for t in doc] == ["john", empty, "smith"]
    (p,) = tokenize_docs(backend, [doc])
    assert hf_tokenizer.convert_ids_to_tokens(p.ids.tolist()) == ["john", "smith"]
    assert p.token_piece.tolist() == [0, -1, 1]
    check_alignment(doc, p, hf_tokenizer)


def test_empty_tokens_at_doc_edges(backend, hf_tokenizer, nlp):
    doc = Doc(nlp.vocab, words=["\u200b", "john", "\x00"], spaces=[True, True, False])
    (p,) = tokenize_docs(backend, [doc])
    assert p.token_piece.tolist() == [-1, 0, -1]
    check_alignment(doc, p, hf_tokenizer)


def test_sentence_starts(nlp, backend, hf_tokenizer):
    doc = nlp("john said . mary told the bank . the team won")
    for token in doc:
        token.is_sent_start = token.i in (0, 3, 8)
    (p,) = tokenize_docs(backend, [doc])
    check_alignment(doc, p, hf_tokenizer)
    expected = [int(p.token_piece[i]) for i in (0, 3, 8)]
    assert p.sentence_starts.tolist() == expected
    assert len(set(expected)) == 3


def test_sentence_start_on_subworded_tokens(nlp, backend, hf_tokenizer):
    doc = nlp("zqx zqx . zqx zqx")
    doc[3].is_sent_start = True
    for token in doc:
        if token.i not in (0, 3):
            token.is_sent_start = False
    (p,) = tokenize_docs(backend, [doc])
    # "zqx" is three pieces; the second sentence starts at the seventh piece.
    assert p.sentence_starts.tolist() == [0, 7]
    assert p.token_starts.tolist() == [0, 3, 6, 7, 10]


def test_giant_token(nlp, backend, hf_tokenizer):
    giant = "abc" * 1700
    doc = nlp(f"john {giant} smith")
    assert len(doc) == 3
    (p,) = tokenize_docs(backend, [doc])
    check_alignment(doc, p, hf_tokenizer)
    tokens = hf_tokenizer.convert_ids_to_tokens(p.ids.tolist())
    assert tokens == ["john", "[UNK]", "smith"]
    assert p.token_piece.tolist() == [0, 1, 2]


def test_many_docs_in_one_call(nlp, backend, hf_tokenizer):
    docs = [nlp(text) for text in TEXTS * 3] + [nlp("")]
    pieces = tokenize_docs(backend, docs)
    assert len(pieces) == len(docs)
    for doc, p in zip(docs, pieces):
        check_alignment(doc, p, hf_tokenizer)


def test_empty_doc(nlp, backend):
    (p,) = tokenize_docs(backend, [nlp("")])
    assert len(p) == 0
    assert p.ids.shape == (0,)
    assert p.token_piece.shape == (0,)
    assert p.token_starts.shape == (0,)
    assert p.sentence_starts.shape == (0,)


def test_whitespace_only_doc(nlp, backend):
    doc = nlp("  \n\n \t ")
    assert len(doc) >= 1
    (p,) = tokenize_docs(backend, [doc])
    assert len(p) == 0
    assert np.all(p.token_piece == -1)


def test_no_docs(backend):
    assert tokenize_docs(backend, []) == []


@pytest.mark.parametrize("chunk_chars", [1, 7, 40, 200])
def test_chunked_tokenization_equals_whole_text(backend, nlp, chunk_chars):
    text = "  " + " \n".join(TEXTS * 3) + "  " + "x" * 300 + " tail"
    docs = [nlp(text), nlp(TEXTS[1]), nlp("")]
    whole = tokenize_by_offsets(backend, docs, chunk_chars=10**9)
    chunked = tokenize_by_offsets(backend, docs, chunk_chars=chunk_chars)
    for a, b in zip(whole, chunked):
        for field in ("ids", "token_piece", "token_starts", "sentence_starts"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_long_text_is_tokenized_in_chunks(backend, nlp, monkeypatch):
    calls = []
    original = backend.encode_batch

    class Spy:
        def encode_batch(self, texts, **kwargs):
            calls.append([len(t) for t in texts])
            return original(texts, **kwargs)

    import spacy_ctxext.tokenization.wordpieces as wordpieces

    monkeypatch.setattr(wordpieces, "GROUP_CHARS", 300)
    doc = nlp(" ".join(TEXTS * 10))
    (pieces,) = tokenize_docs(Spy(), [doc], chunk_chars=100)
    assert len(calls) > 1 and all(sum(call) <= 300 for call in calls)
    assert all(length <= 100 for call in calls for length in call)
    assert pieces.ids.tolist() == reference_encoding_ids(backend, doc.text)


def reference_encoding_ids(backend, text):
    return backend.encode(text, add_special_tokens=False).ids


def test_special_tokens_come_from_the_backend(hf_tokenizer):
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    cls, sep = hf_tokenizer.cls_token_id, hf_tokenizer.sep_token_id
    assert special_tokens(load_backend(hf_tokenizer)) == ([cls], [sep])
    # A generic fast tokenizer (no Python subclass, as for ModernBERT): only the Rust
    # post-processor knows its specials (transformers 4's build_inputs_with_special_tokens
    # adds none there; transformers 5 has no such method on it).
    rust = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    rust.post_processor = TemplateProcessing(
        single="[SEP] [CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    generic = PreTrainedTokenizerFast(tokenizer_object=rust)
    assert special_tokens(load_backend(generic)) == ([sep, cls], [sep])
    assert generic("paris")["input_ids"][:2] == [sep, cls]
