"""Planning in numpy: which wordpieces of which docs go in which padded encoder row."""

import warnings

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc
from util import STORY, TRAIN_DATA

from spacy_ctxext.planning import batch_plan as planning
from spacy_ctxext.planning.batch_plan import plan_batch, split_batch
from spacy_ctxext.planning.sentences import NoSentencesWarning, UnsentencedDocs
from spacy_ctxext.tokenization.wordpieces import load_backend, special_tokens, tokenize_docs


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def backend(tokenizer):
    return load_backend(tokenizer)


@pytest.fixture(scope="module")
def docs():
    nlp = spacy.blank("en")
    texts = [t for t, _ in TRAIN_DATA] + ["", "  \n ", STORY * 12, "Paris"]
    return [nlp.make_doc(t) for t in texts]


def plan(docs, backend, tokenizer, **sizes):
    settings = {"window": 32, "context": 4, "batch_wordpieces": 256, **sizes}
    specials = special_tokens(backend)
    return plan_batch(docs, backend, specials=specials, pad_id=tokenizer.pad_token_id, **settings)


def test_every_token_is_placed_once_on_its_first_wordpiece(docs, backend, tokenizer):
    result = plan(docs, backend, tokenizer)
    pieces = tokenize_docs(backend, docs)
    first_piece = np.concatenate(
        [np.append(p.ids, -1)[p.token_piece] for p in pieces]  # -1: no piece
    )
    has_piece = np.concatenate([p.token_piece >= 0 for p in pieces])
    assert result.n_tokens == sum(len(d) for d in docs) == len(has_piece)
    assert result.doc_lengths.tolist() == [len(d) for d in docs]
    placed = np.concatenate([b.tokens for b in result.batches])
    assert sorted(placed.tolist()) == np.flatnonzero(has_piece).tolist()
    assert result.empty_tokens.tolist() == np.flatnonzero(~has_piece).tolist()
    for batch in result.batches:
        assert len(batch.rows) == len(batch.cols) == len(batch.tokens)
        np.testing.assert_array_equal(
            batch.input_ids[batch.rows, batch.cols], first_piece[batch.tokens]
        )
        assert batch.attention_mask[batch.rows, batch.cols].all()


def test_rows_are_windows_between_special_tokens(docs, backend, tokenizer):
    result = plan(docs, backend, tokenizer)
    (cls,), (sep,) = special_tokens(backend)
    n_windows = 0
    for batch in result.batches:
        rows, width = batch.input_ids.shape
        # One padded call within the budget, unless it is a single window.
        assert rows * width <= 256 or rows == 1
        assert width <= 32
        lengths = batch.attention_mask.sum(axis=1)
        assert (batch.attention_mask == (np.arange(width) < lengths[:, None])).all()
        assert (batch.input_ids[:, 0] == cls).all()
        assert (batch.input_ids[np.arange(rows), lengths - 1] == sep).all()
        assert (batch.input_ids[batch.attention_mask == 0] == tokenizer.pad_token_id).all()
        assert batch.input_ids.dtype == batch.tokens.dtype == np.int32
        n_windows += rows
    # The long doc needs several 30-piece windows; the empty ones need none.
    assert n_windows > len(docs)


def test_no_docs_and_docs_without_pieces(backend, tokenizer):
    nlp = spacy.blank("en")
    assert plan([], backend, tokenizer).batches == []
    result = plan([nlp(""), nlp(" \n\n ")], backend, tokenizer)
    assert result.batches == [] and result.n_tokens == 1
    assert result.empty_tokens.tolist() == [0]


def test_split_batch_renumbers_rows(docs, backend, tokenizer):
    (batch,) = plan(docs[:3], backend, tokenizer, batch_wordpieces=4096).batches
    assert len(batch.input_ids) == 3
    first, second = split_batch(batch)
    assert (len(first.input_ids), len(second.input_ids)) == (1, 2)
    for half, rows in ((first, [0]), (second, [1, 2])):
        np.testing.assert_array_equal(half.input_ids, batch.input_ids[rows])
        np.testing.assert_array_equal(half.attention_mask, batch.attention_mask[rows])
        assert set(half.rows.tolist()) == set(range(len(rows)))
        np.testing.assert_array_equal(
            half.input_ids[half.rows, half.cols],
            batch.input_ids[batch.rows, batch.cols][np.isin(batch.tokens, half.tokens)],
        )
    assert sorted(np.concatenate([first.tokens, second.tokens]).tolist()) == sorted(
        batch.tokens.tolist()
    )


def test_only_long_batches_trim_the_heap(docs, backend, tokenizer, monkeypatch):
    trims = []
    monkeypatch.setattr(planning, "trim_heap", lambda: trims.append(1))
    n_tokens = sum(len(doc) for doc in docs)
    for threshold, expected in ((n_tokens + 1, []), (n_tokens, [1]), (None, [])):
        trims.clear()
        plan(docs, backend, tokenizer, trim_after_tokens=threshold)
        assert trims == expected


def test_isolated_sentences_warn_once_per_process_about_unsentenced_docs(
    backend, tokenizer, monkeypatch
):
    monkeypatch.setattr(planning, "UNSENTENCED_DOCS", UnsentencedDocs())
    nlp = spacy.blank("en")
    words = ["Mary", "left", ".", "Peter", "stayed", "."]
    sentenced = Doc(nlp.vocab, words=words, sent_starts=[1, 0, 0, 1, 0, 0])
    one_sentence = Doc(nlp.vocab, words=words[:3])  # as gold_preproc makes them
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoSentencesWarning)
        plan([sentenced, one_sentence], backend, tokenizer, isolate_sentences=True)
    unsentenced = nlp.make_doc("Mary left . Peter stayed .")
    with pytest.warns(NoSentencesWarning, match="1 of 3 docs hold several sentences"):
        plan([sentenced, unsentenced, one_sentence], backend, tokenizer, isolate_sentences=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoSentencesWarning)
        plan([unsentenced], backend, tokenizer, isolate_sentences=True)  # said once
        plan([unsentenced], backend, tokenizer)  # windows cross sentences anyway
