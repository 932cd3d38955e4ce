"""Passages retrieved from the whole document: which, where they go, and that they are
read but never predicted."""

import numpy as np
import pytest
import spacy
from util import STORY, make_examples, make_nlp

from spacy_ctxext.planning.batch_plan import plan_batch
from spacy_ctxext.planning.joined import JoinedPieces
from spacy_ctxext.planning.retrieval import passages_room, retrieve_passages, token_terms
from spacy_ctxext.planning.windows import plan_joined_windows
from spacy_ctxext.tokenization.wordpieces import load_backend, special_tokens, tokenize_docs

# A name explained far from where the window that needs it sits: filler between.
FILLER = "the bank said the company lost money . " * 6
TEXT = (
    "Mr Holmes met Peter in Paris . " + FILLER + "the police told Mary about the city . "
    + FILLER + "later Holmes and Mary went to London . " + FILLER
)  # fmt: skip


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


@pytest.fixture(scope="module")
def backend(tiny_bert):
    from transformers import AutoTokenizer

    return load_backend(AutoTokenizer.from_pretrained(tiny_bert))


def test_key_terms_are_capitalised_rarer_words_inside_a_passage(nlp):
    doc = nlp.make_doc("Mr Holmes met Peter in Paris . The bank and NASA said so .")
    terms, starts = token_terms([doc])
    keyed = [t.text for t, term in zip(doc, terms) if term]
    # "Mr" starts its passage, "The" too (and is a stop word); NASA is all capitals.
    assert keyed == ["Holmes", "Peter", "Paris", "NASA"]
    assert terms[1] == doc.vocab.strings["holmes"]  # compared lower-cased
    assert starts.tolist() == [t.i in (0, 7) for t in doc]


def retrieve(docs, backend, *, window, context, k, pieces):
    joined = JoinedPieces.of(tokenize_docs(backend, docs))
    windows = plan_joined_windows(
        joined.offsets, joined.token_starts, joined.sentence_starts, window=window, context=context
    )
    found = retrieve_passages(
        windows,
        docs,
        joined.offsets,
        joined.token_piece,
        joined.token_starts,
        k=k,
        passage_pieces=pieces,
    )
    return joined, windows, found


def passage_texts(backend, joined, found, window):
    ids = [joined.ids[s:e] for w, s, e in zip(found.window, found.start, found.end) if w == window]
    return [backend.decode(list(map(int, part))) for part in ids]


def test_a_window_reads_the_far_passages_that_share_its_names(nlp, backend):
    doc = nlp.make_doc(TEXT)
    joined, windows, found = retrieve([doc], backend, window=40, context=4, k=2, pieces=16)
    later = next(t.i for t in doc if t.text == "later")
    texts = passage_texts(
        backend, joined, found, int(windows.locate(joined.token_piece[[later]])[0])
    )
    assert any("holmes" in text and "paris" in text for text in texts), texts
    for w, start, end in zip(found.window, found.start, found.end):
        assert end - start <= 16
        # Never what the window reads already.
        assert end <= windows.start[w] or start >= windows.end[w]
    assert np.all(np.diff(found.window) >= 0)
    assert np.bincount(found.window).max() <= 2


def test_windows_that_share_nothing_read_nothing(nlp, backend):
    doc = nlp.make_doc(FILLER * 3)  # no capitalised word at all
    _, _, found = retrieve([doc], backend, window=40, context=4, k=2, pieces=16)
    assert len(found) == 0


def test_passages_stay_in_their_doc(nlp, backend):
    docs = [nlp.make_doc(TEXT), nlp.make_doc("Holmes was in Paris . " + FILLER)]
    joined, windows, found = retrieve(docs, backend, window=40, context=4, k=3, pieces=16)
    doc_of = np.searchsorted(joined.offsets, found.start, side="right") - 1
    window_doc = np.searchsorted(joined.offsets, windows.start[found.window], side="right") - 1
    assert len(found) and np.array_equal(doc_of, window_doc)


def plan(docs, backend, tokenizer_pad, **settings):
    sizes = {"window": 64, "context": 4, "batch_wordpieces": 512, **settings}
    return plan_batch(
        docs, backend, specials=special_tokens(backend), pad_id=tokenizer_pad, **sizes
    )


def test_passages_follow_the_window_each_after_a_separator(nlp, backend):
    docs = [nlp.make_doc(TEXT), nlp.make_doc(STORY * 6)]
    (cls,), (sep,) = special_tokens(backend)
    plain = plan(docs, backend, 0)
    reading = plan(docs, backend, 0, retrieved_passages=2, passage_pieces=10)
    assert sum(b.input_ids.shape[0] for b in reading.batches) > 0
    rows_with_passages = 0
    for batch in reading.batches:
        lengths = batch.attention_mask.sum(1)
        assert lengths.max() <= 64
        for ids, length in zip(batch.input_ids, lengths):
            row = ids[:length].tolist()
            assert row[0] == cls and row[-1] == sep
            seps = [i for i, piece in enumerate(row) if piece == sep]
            rows_with_passages += len(seps) > 1
            assert len(seps) <= 3 and all(b - a - 1 <= 10 for a, b in zip(seps, seps[1:]))
        # Tokens are predicted from the window's own pieces, before its first separator.
        first_sep = np.argmax(batch.input_ids == sep, axis=1)
        assert np.all(batch.cols < first_sep[batch.rows])
    assert rows_with_passages > 0
    # Every token is still predicted once, as without passages.
    tokens = np.sort(np.concatenate([b.tokens for b in reading.batches]))
    expected = np.sort(np.concatenate([b.tokens for b in plain.batches]))
    assert np.array_equal(tokens, expected)


def test_passages_take_their_room_out_of_the_window():
    assert passages_room(2, 32, 1) == 66
    assert passages_room(0, 32, 1) == 0


@pytest.fixture(scope="module")
def reading_nlp(tiny_bert):
    nlp = make_nlp(tiny_bert, window=48, context=4, retrieved_passages=2, passage_pieces=8)
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


def test_the_pipeline_gives_the_same_entities_in_any_batch(reading_nlp):
    texts = [TEXT, "Mary went to Paris .", TEXT[:300], ""]
    alone = [[(e.start_char, e.label_) for e in reading_nlp(t).ents] for t in texts]
    for batch_size in (1, 2, 4):
        piped = reading_nlp.pipe(texts, batch_size=batch_size)
        assert [[(e.start_char, e.label_) for e in d.ents] for d in piped] == alone


def test_saved_and_loaded_with_its_passages(reading_nlp, tmp_path):
    reading_nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    encoder = loaded.get_pipe("ctx_ner").model.layers[0]
    assert encoder.attrs["retrieved_passages"] == 2 and encoder.attrs["passage_pieces"] == 8
    doc_a, doc_b = reading_nlp(TEXT), loaded(TEXT)
    assert [(e.start, e.end, e.label_) for e in doc_a.ents] == [
        (e.start, e.end, e.label_) for e in doc_b.ents
    ]
    off = spacy.load(
        tmp_path / "model", config={"components.ctx_ner.model.encoder.retrieved_passages": 0}
    )
    assert off.get_pipe("ctx_ner").model.layers[0].attrs["retrieved_passages"] == 0


def test_too_many_passages_for_the_window_is_refused(tiny_bert):
    nlp = make_nlp(tiny_bert, window=48, context=4, retrieved_passages=4, passage_pieces=10)
    with pytest.raises(ValueError, match="context=4 leaves no room"):
        nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match="retrieved_passages must be >= 0"):
        make_nlp(tiny_bert, retrieved_passages=-1)
