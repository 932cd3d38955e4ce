"""``spacy-ctxext.context_windows.v1`` as spans for a stock spacy-transformers component."""

import random

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc

from spacy_ctxext.pipeline.span_getters import configure_context_windows, get_context_windows
from spacy_ctxext.planning.windows import plan_windows
from spacy_ctxext.tokenization.wordpieces import tokenize_docs

NAME = "spacy-ctxext.context_windows.v1"
WORDS = "the bank said john smith new york company zqxv reuters minister 1,000 percent".split()


def count_pieces(backend, span) -> int:
    return sum(len(backend.encode(t.text, add_special_tokens=False).ids) for t in span)


def make_text(n_words: int, seed: int = 0, spaces=(" ",)) -> str:
    rng = random.Random(seed)
    parts = []
    for i in range(n_words):
        parts.append(rng.choice(WORDS))
        parts.append("." + rng.choice(spaces) if i % 9 == 8 else rng.choice(spaces))
    return "".join(parts)


def sentence_doc(nlp, n_words: int, seed: int = 0, spaces=(" ",)) -> Doc:
    doc = nlp(make_text(n_words, seed, spaces))
    for token in doc:
        token.is_sent_start = token.i == 0 or doc[token.i - 1].text == "."
    return doc


def check_windows(doc, spans, window, context, backend=None, overlap=True):
    """Coverage, order, overlap and (with a backend) the wordpiece budget.

    Windows hold whole tokens, so they are only sure to overlap when the context is
    at least twice the longest token's wordpieces; callers pass ``overlap=False``
    otherwise.
    """
    assert spans, "a non-empty doc needs at least one window"
    assert all(s.doc is doc for s in spans)
    starts = [s.start for s in spans]
    assert starts == sorted(starts)
    covered = np.zeros(len(doc), dtype=int)
    for s in spans:
        assert len(s) >= 1
        covered[s.start : s.end] += 1
    assert covered.min() >= 1, "every token is in some window"
    assert spans[0].start == 0 and spans[-1].end == len(doc)
    for a, b in zip(spans[:-1], spans[1:]):
        if overlap:
            assert b.start < a.end, "consecutive windows overlap by their context"
        assert b.start <= a.end, "no token falls between two windows"
        assert b.end > a.end, "each window adds something"
    if backend is not None:
        for s in spans:
            # A token longer than a window cannot be cut as a Span: it comes whole, so
            # the windows holding one are exempt from the budget.
            if len(s) > 1 and all(
                count_pieces(backend, s[i : i + 1]) <= window - 2 for i in range(len(s))
            ):
                assert count_pieces(backend, s) <= window - 2, (s.start, s.end)


@pytest.mark.spacy_transformers
def test_registered():
    from spacy_transformers.util import registry

    getter = registry.span_getters.get(NAME)
    assert getter is configure_context_windows
    spanner = getter(window=64, context=8)
    assert callable(spanner)


def test_entry_point_installed():
    from importlib.metadata import entry_points

    eps = entry_points()
    group = (
        eps.select(group="spacy_span_getters")
        if hasattr(eps, "select")
        else eps.get("spacy_span_getters", [])
    )
    assert NAME in {ep.name for ep in group}


@pytest.mark.parametrize("window,context", [(64, 32), (64, 40), (32, 16), (10, 4)])
def test_bad_sizes(window, context):
    with pytest.raises(ValueError, match="context"):
        configure_context_windows(window=window, context=context)


@pytest.mark.parametrize("window,context", [(32, 4), (64, 8), (64, 16), (20, 2), (12, 0)])
def test_with_tokenizer(nlp, tiny_bert, tiny_backend, window, context):
    doc = sentence_doc(nlp, 400)
    spanner = configure_context_windows(window=window, context=context, tokenizer=tiny_bert)
    (spans,) = spanner([doc])
    assert len(spans) > 3
    longest = max(count_pieces(tiny_backend, doc[i : i + 1]) for i in range(len(doc)))
    assert longest <= 5
    check_windows(doc, spans, window, context, tiny_backend, overlap=context >= 2 * longest)


def test_with_tokenizer_and_empty_tokens(nlp, tiny_bert, tiny_backend):
    # Double spaces, newlines, U+200B and control characters make spaCy tokens without
    # wordpieces; windows must still hold to the budget and cover them.
    doc = sentence_doc(nlp, 500, seed=1, spaces=(" ", "  ", " \n\n ", " \u200b ", " \x00 "))
    assert any(not t.text.strip() for t in doc)
    for window, context in [(20, 2), (32, 4), (64, 8), (64, 12)]:
        (spans,) = get_context_windows([doc], window=window, context=context, tokenizer=tiny_bert)
        check_windows(doc, spans, window, context, tiny_backend, overlap=context >= 10)


def test_without_tokenizer_estimate(nlp):
    doc = sentence_doc(nlp, 400)
    (spans,) = get_context_windows([doc], window=32, context=4)
    check_windows(doc, spans, 32, 4)
    # About one wordpiece per four characters, at least one per token.
    for s in spans:
        if len(s) > 1:
            assert sum(1 + len(t.text) // 4 for t in s) <= 30


def test_estimate_without_sentences(nlp):
    doc = nlp(make_text(300))
    assert not doc.has_annotation("SENT_START")
    (spans,) = get_context_windows([doc], window=32, context=4)
    check_windows(doc, spans, 32, 4)


def test_short_doc_is_one_window(nlp, tiny_bert):
    doc = nlp("john smith said")
    assert get_context_windows([doc], window=32, context=4, tokenizer=tiny_bert) == [[doc[:]]]
    assert get_context_windows([doc], window=32, context=4) == [[doc[:]]]


def test_cores_start_at_sentence_starts(nlp, tiny_bert, tiny_backend):
    # Windows carry context, so a window's own start lies before its core. The cores,
    # which decide what each window adds, start at sentence starts; and every core's
    # tokens lie in its window.
    doc = sentence_doc(nlp, 400)
    window, context = 64, 8
    (spans,) = get_context_windows([doc], window=window, context=context, tokenizer=tiny_bert)
    (pieces,) = tokenize_docs(tiny_backend, [doc])
    plan = plan_windows(
        len(pieces),
        pieces.token_starts,
        pieces.sentence_starts,
        window=window - 2,
        context=context,
    )
    assert len(plan) == len(spans)
    sentence_pieces = {int(pieces.token_piece[s.start]) for s in doc.sents}
    assert set(plan.core_start.tolist()) <= sentence_pieces
    token_of_piece = {int(p): i for i, p in enumerate(pieces.token_piece) if p >= 0}
    for s, core_start, core_end in zip(spans, plan.core_start, plan.core_end):
        first = token_of_piece[int(core_start)]
        assert s.start <= first < s.end
        assert doc[first].is_sent_start
        core_tokens = [i for i, p in enumerate(pieces.token_piece) if core_start <= p < core_end]
        assert s.start <= min(core_tokens) and max(core_tokens) < s.end
    # Where the context reaches the doc start, the window starts at a sentence start too.
    assert spans[0].start == 0


def test_empty_doc(nlp, tiny_bert):
    doc = nlp("")
    assert get_context_windows([doc], window=32, context=4, tokenizer=tiny_bert) == [[]]
    assert get_context_windows([doc], window=32, context=4) == [[]]


def test_no_docs(tiny_bert):
    assert get_context_windows([], window=32, context=4, tokenizer=tiny_bert) == []


def test_whitespace_only_doc(nlp, tiny_bert):
    doc = nlp("   \n\n \t \u200b ")
    assert len(doc) >= 1
    for kwargs in ({"tokenizer": tiny_bert}, {}):
        (spans,) = get_context_windows([doc], window=32, context=4, **kwargs)
        assert len(spans) == 1
        assert (spans[0].start, spans[0].end) == (0, len(doc))


def test_giant_token_with_tokenizer(nlp, tiny_bert, tiny_backend):
    # Punctuation splits into one wordpiece per character: 401 pieces in one spaCy token.
    giant = ",".join("a" * 201)
    words = WORDS * 5 + [giant] + WORDS * 5
    doc = Doc(nlp.vocab, words=words)
    assert count_pieces(tiny_backend, doc[len(WORDS) * 5 : len(WORDS) * 5 + 1]) > 64
    (spans,) = get_context_windows([doc], window=32, context=4, tokenizer=tiny_bert)
    # Context cannot reach across a token longer than a window.
    check_windows(doc, spans, 32, 4, tiny_backend, overlap=False)
    index = len(WORDS) * 5
    holding = [s for s in spans if s.start <= index < s.end]
    assert holding, "the giant token is not dropped"


def test_giant_token_estimate(nlp):
    giant = "x" * 5000
    doc = nlp(make_text(100) + " " + giant + " " + make_text(100, seed=3))
    index = next(t.i for t in doc if t.text == giant)
    (spans,) = get_context_windows([doc], window=32, context=4)
    check_windows(doc, spans, 32, 4, overlap=False)
    assert any(s.start <= index < s.end for s in spans)
    # Away from the giant token, windows still overlap.
    for a, b in zip(spans[:-1], spans[1:]):
        if not (a.start <= index < a.end or b.start <= index < b.end):
            assert b.start < a.end


def test_several_docs(nlp, tiny_bert, tiny_backend):
    docs = [sentence_doc(nlp, n, seed=n) for n in (0, 5, 100, 300)]
    result = get_context_windows(docs, window=32, context=4, tokenizer=tiny_bert)
    assert len(result) == len(docs)
    assert result[0] == []
    for doc, spans in zip(docs[1:], result[1:]):
        check_windows(doc, spans, 32, 4, tiny_backend)


@pytest.mark.spacy_transformers
def test_stock_transformer_component(tiny_bert):
    import spacy_transformers  # noqa: F401  (registers the transformer factory)

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "name": tiny_bert,
                "get_spans": {
                    "@span_getters": NAME,
                    "window": 64,
                    "context": 8,
                    "tokenizer": tiny_bert,
                },
            }
        },
    )
    nlp.initialize()
    text = " ".join(["John Smith said the bank in New York was a company ."] * 25)
    doc = nlp(text)
    assert 250 <= len(doc) <= 350
    data = doc._.trf_data
    assert data is not None
    hidden = data.model_output.last_hidden_state
    assert hidden.ndim == 3 and hidden.shape[-1] == 32
    # Several windows, none longer than the 64 positions they were sized for.
    assert hidden.shape[0] > 1
    assert hidden.shape[1] <= 64
    assert data.wordpieces.input_ids.shape[1] <= 64
    assert np.isfinite(np.asarray(hidden)).all()
    # Every token is aligned to at least one wordpiece.
    assert len(data.align.lengths) == len(doc)
    assert int(np.asarray(data.align.lengths).min()) >= 1


@pytest.fixture(scope="module")
def byte_level_bpe(tmp_path_factory):
    """A RoBERTa-style tokenizer: words after a space are other pieces than at a text start."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rust = Tokenizer(models.BPE())
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    rust.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    rust.train_from_iterator([" ".join(WORDS + ["government", "told"])] * 20, trainer)
    folder = tmp_path_factory.mktemp("bpe")
    PreTrainedTokenizerFast(tokenizer_object=rust).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("window,context", [(8, 1), (12, 2), (20, 4), (64, 8)])
def test_spans_fit_when_tokenized_alone_with_byte_level_bpe(nlp, byte_level_bpe, window, context):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(byte_level_bpe)
    assert len(tokenizer("government").input_ids) > len(tokenizer(" government").input_ids) == 1
    docs = [nlp(make_text(150, seed)) for seed in range(10)]
    docs.append(nlp("the government said the government told the government"))
    for doc, spans in zip(docs, get_context_windows(docs, window=window, context=context,
                                                     tokenizer=byte_level_bpe)):  # fmt: skip
        for span in spans:
            # This tokenizer adds no special tokens, so a span may fill the whole window.
            assert len(tokenizer(span.text).input_ids) <= window, span.text
        covered = np.zeros(len(doc), dtype=bool)
        for span in spans:
            covered[span.start : span.end] = True
        assert covered.all()
