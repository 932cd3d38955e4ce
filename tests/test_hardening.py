"""Hardening: odd input, bad training data, faults and round-trips. Nothing crashes,
nothing is lost: every token gets an IOB value and every entity is a valid span."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as load_safetensors
from spacy.pipeline import Sentencizer
from spacy.tokens import DocBin, Span
from spacy.training import Example

from spacy_ctxext.architectures import get_net
from spacy_ctxext.encoder import ContextNet
from spacy_ctxext.pipeline import CtxNER, UnalignedEntitiesWarning
from spacy_ctxext.wordpieces import tokenize_docs

TRAIN_DATA = [
    ("John Smith visited New York on Monday .", [(0, 10, "PER"), (19, 27, "LOC")]),
    ("Reuters said the bank in London lost money .", [(0, 7, "ORG"), (25, 31, "LOC")]),
    ("Mary told Peter about Paris .", [(0, 4, "PER"), (10, 15, "PER"), (22, 27, "LOC")]),
]
STORY = "Mary told Peter about Paris and the bank in London . "
ZERO_PIECE_CHARS = ["\u200b", "\x01", "\x07", "\u0301", "\u00ad", "\x00"]
SCRIPTS = [
    "Mary 😀 met 👩‍👩‍👧 in Paris 🇫🇷 .",
    "東京で John Smith に会った 。北京 和 上海",
    "مرحبا بكم في London . שלום עולם Paris",
    "Mary\x00Smith \x00 visited\x00 Berlin \x00",
    "Пётр met Ἀθῆναι and 서울 near ∑∞ in Paris",
]
SPACE_AND_CONTROL = ("Zs", "Zl", "Zp", "Cc", "Cf", "Mn")
CHAR_SOUP = list("abcxyz ABC .,-'\n\t\r\x00\x01\u200b\u0301\u00ad\u202e😀東مש") + [
    " Mary ",
    " Paris ",
    " London ",
]


def make_nlp(encoder_path, **encoder_settings):
    nlp = spacy.blank("en")
    config = {"model": {"encoder": {"name": encoder_path, **encoder_settings}}}
    nlp.add_pipe("ctx_ner", config=config)
    return nlp


def make_examples(nlp, data=TRAIN_DATA):
    return [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in data]


def entities(doc):
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def assert_valid(doc, labels=("LOC", "ORG", "PER")):
    """Every token tagged B/I/O with a known label; entities are in-range, valid BIO runs."""
    for i, token in enumerate(doc):
        assert token.ent_iob_ in ("B", "I", "O"), (i, token.text, token.ent_iob_)
        if token.ent_iob_ == "I":
            prev = doc[i - 1]
            assert i > 0 and prev.ent_iob_ in ("B", "I") and prev.ent_type_ == token.ent_type_
        assert (token.ent_type_ in labels) == (token.ent_iob_ != "O")
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc) and ent.label_ in labels
    group = doc.spans["ctx_ner"]
    assert len(group.attrs["scores"]) == len(group)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on two busy cores, OpenMP's two threads make this tiny encoder
    ~10x slower (1M characters: 17 s instead of 1.7 s while a training runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield threads
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(trained):
    """The session's overfit ctx_ner from conftest, without its step count."""
    return trained[0]


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("hardening") / "model"
    trained.to_disk(path)
    return path


@pytest.fixture(scope="module")
def odd_texts():
    return {
        "empty": "",
        "whitespace": " \n\t  \r\n ",
        "long_token": "ab" * 100_000,
        "zero_pieces": "Mary " + " ".join(ZERO_PIECE_CHARS) + " Paris \u200b\u0301 .",
        "no_punctuation": " ".join(STORY.replace(" .", "").split() * 500),
        **{f"script_{i}": text for i, text in enumerate(SCRIPTS)},
    }


# 1. Inputs that must work ---------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\n\t", " " * 1000])
def test_empty_and_whitespace_only(trained, text):
    doc = trained(text)
    assert_valid(doc)
    assert list(doc.ents) == []


def test_single_200k_character_token(trained):
    doc = trained("ab" * 100_000)
    assert len(doc) == 1 and len(doc.text) == 200_000
    assert_valid(doc)


@pytest.fixture(scope="module")
def million(trained):
    """A 1,000,000-character document (spaCy's default max_length) tagged on its own."""
    return trained((STORY * (10**6 // len(STORY) + 1))[: 10**6])


def test_million_character_document(million):
    assert len(million.text) == 10**6
    assert_valid(million)
    assert len(million.ents) > 0


@pytest.mark.parametrize("char", ZERO_PIECE_CHARS, ids=ascii)
def test_tokens_without_wordpieces(trained, char):
    doc = trained.make_doc(f"Mary {char} visited {char}{char} Paris {char}")
    net = get_net(trained.get_pipe("ctx_ner").model.layers[0])
    # The premise: at least one token really has no wordpiece.
    assert (tokenize_docs(net.backend, [doc])[0].token_piece < 0).any()
    assert_valid(trained(doc))


@pytest.mark.parametrize("text", SCRIPTS)
def test_scripts_emoji_and_nul_bytes(trained, text):
    doc = trained(text)
    assert doc.text == text
    assert_valid(doc)


def test_long_sentence_without_punctuation(trained):
    words = STORY.replace(" .", "").split() * 500
    doc = trained(" ".join(words))
    assert len(doc) == 5000
    assert_valid(doc)


def test_with_and_without_sentence_boundaries(trained):
    text = STORY * 60
    plain = trained(text)
    with_sents = trained(Sentencizer()(trained.make_doc(text)))
    assert not plain.has_annotation("SENT_START") and with_sents.has_annotation("SENT_START")
    for doc in (plain, with_sents):
        assert_valid(doc)
        assert len(doc.ents) > 0


def preset(nlp, text):
    doc = nlp.make_doc(text)
    doc.set_ents([Span(doc, 0, 2, label="ORG")], default="missing")
    return doc


@pytest.mark.parametrize("overwrite", [False, True])
def test_preset_entities_and_overwrite(trained, overwrite):
    ner = trained.get_pipe("ctx_ner")
    text = "John Smith visited New York on Monday ."
    ner.cfg["overwrite"] = overwrite
    try:
        doc = ner(preset(trained, text))
    finally:
        ner.cfg["overwrite"] = True
    assert_valid(doc)
    if overwrite:
        assert entities(doc) == entities(trained(text))
    else:
        assert entities(doc)[0] == (0, 10, "ORG")
        assert (19, 27, "LOC") in entities(doc)


def test_mixed_batch_equals_one_by_one(trained, odd_texts, million):
    texts = list(odd_texts.values()) + [t for t, _ in TRAIN_DATA]
    docs = [trained.make_doc(t) for t in texts]
    docs.append(Sentencizer()(trained.make_doc(STORY * 20)))
    docs.append(preset(trained, STORY))
    single = [trained(d.copy()) for d in docs]
    docs.insert(3, trained.make_doc(million.text))
    single.insert(3, million)
    batched = list(trained.pipe([d.copy() for d in docs], batch_size=64))
    for a, b in zip(single, batched):
        assert_valid(b)
        assert entities(a) == entities(b)
        assert [t.ent_iob_ for t in a] == [t.ent_iob_ for t in b]
        np.testing.assert_allclose(
            a.spans["ctx_ner"].attrs["scores"], b.spans["ctx_ner"].attrs["scores"], atol=1e-5
        )


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    text=st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=200),
        st.text(
            st.characters(whitelist_categories=("Zs", "Zl", "Zp", "Cc", "Cf", "Mn")), max_size=50
        ),
        st.lists(st.sampled_from(CHAR_SOUP), max_size=80).map("".join),
    )
)
def test_random_unicode_never_crashes(trained, text):
    doc = trained(text)
    assert doc.text == text
    assert_valid(doc)


# 2. Training data → clear messages ------------------------------------------------------


@pytest.fixture(scope="module")
def fresh(tiny_bert):
    """An initialized, untrained ctx_ner for tests that update or fail (its weights may move)."""
    nlp = make_nlp(tiny_bert)
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


def unaligned_examples(nlp):
    """Entity offsets inside words: spaCy warns W030 and marks those tokens missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            Example.from_dict(nlp.make_doc("Mary visited Paris ."), {"entities": [(0, 3, "PER")]}),
            Example.from_dict(
                nlp.make_doc("John Smith visited New York ."),
                {"entities": [(0, 7, "PER"), (19, 27, "LOC")]},
            ),
        ]


def test_unaligned_gold_entities_warn_once_per_update(fresh):
    ner = fresh.get_pipe("ctx_ner")
    bad = unaligned_examples(fresh)
    n_missing = sum(tag is None for eg in bad for tag in ner._bio_targets(eg))
    assert n_missing >= 3
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh.update(bad + make_examples(fresh))
        ours = [w for w in caught if issubclass(w.category, UnalignedEntitiesWarning)]
        assert len(ours) == 1
        assert f"{n_missing} token(s) in 2 of 5 training examples" in str(ours[0].message)
        assert "offsets_to_biluo_tags" in str(ours[0].message)


def test_unaligned_gold_tokens_are_left_out_of_the_loss(fresh):
    ner = fresh.get_pipe("ctx_ner")
    bad = unaligned_examples(fresh)[:1]
    assert ner._bio_targets(bad[0]) == [None, "O", "O", "O"]
    scores = ner.model.predict([eg.x for eg in bad])
    with pytest.warns(UnalignedEntitiesWarning, match="1 token"):
        _, d_scores = ner.get_loss(bad, scores)
    assert not d_scores[0][0].any()
    assert d_scores[0][1:].any(axis=1).all()


def test_aligned_examples_do_not_warn(fresh):
    ner = fresh.get_pipe("ctx_ner")
    examples = make_examples(fresh)
    # A doc without any NER annotation is "not annotated", not misaligned.
    examples.append(Example.from_dict(fresh.make_doc("no annotation here"), {}))
    scores = ner.model.predict([eg.x for eg in examples])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnalignedEntitiesWarning)
        ner.get_loss(examples, scores)


def test_unseen_label_names_it_and_the_fix(fresh):
    odd = Example.from_dict(fresh.make_doc("Mary sang ."), {"entities": [(0, 4, "SINGER")]})
    with pytest.raises(ValueError, match=r"'SINGER'.*initialize\.components\.ctx_ner\.labels"):
        fresh.update([odd])


@pytest.mark.parametrize("corpus", [list, iter], ids=["list", "generator"])
def test_empty_corpus_is_a_clear_error(tiny_bert, corpus):
    nlp = make_nlp(tiny_bert)
    with pytest.raises(ValueError, match=r"training corpus is empty.*paths\.train"):
        nlp.initialize(lambda: corpus([]))


def test_corpus_without_entities_is_a_clear_error(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = [Example.from_dict(nlp.make_doc("nothing to see"), {"entities": []})]
    with pytest.raises(ValueError, match="No entity labels found"):
        nlp.initialize(lambda: examples)


def test_overlapping_gold_entities(fresh):
    text = "New York City Bank"
    # doc.ents cannot overlap: spaCy refuses such examples with a clear error ...
    with pytest.raises(ValueError, match=r"E103.*overlap"):
        Example.from_dict(fresh.make_doc(text), {"entities": [(0, 13, "LOC"), (9, 18, "ORG")]})
    # ... and overlapping spans kept in doc.spans are not ctx_ner's targets: doc.ents are.
    reference = fresh.make_doc(text)
    reference.set_ents([Span(reference, 0, 2, label="LOC")], default="outside")
    reference.spans["sc"] = [Span(reference, 0, 3, "LOC"), Span(reference, 2, 4, "ORG")]
    example = Example(fresh.make_doc(text), reference)
    targets = fresh.get_pipe("ctx_ner")._bio_targets(example)
    assert targets == ["B-LOC", "I-LOC", "O", "O"]


# 3. Faults and round-trips --------------------------------------------------------------


def failing_forward(limit, calls):
    """ContextNet.forward that runs out of memory above ``limit`` windows per call."""
    forward = ContextNet.forward

    def run(self, input_ids, *args):
        calls.append(len(input_ids))
        if len(input_ids) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, input_ids, *args)

    return run


def test_oom_at_inference_splits_batches_down_to_one_window(trained, monkeypatch):
    ner = trained.get_pipe("ctx_ner")
    docs = [trained.make_doc(STORY * 40), trained.make_doc(""), trained.make_doc(STORY * 3)]
    expected, expected_tags = ner.model.predict(docs), ner.predict(docs)
    calls = []
    monkeypatch.setattr(ContextNet, "forward", failing_forward(1, calls))
    got, tags = ner.model.predict(docs), ner.predict(docs)
    assert max(calls) > 2 and 1 in calls
    for x, y in zip(expected, got):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    for (a, _), (b, _) in zip(expected_tags, tags):
        np.testing.assert_array_equal(a, b)


def test_oom_on_a_single_window_names_the_settings(trained, monkeypatch):
    ner = trained.get_pipe("ctx_ner")
    monkeypatch.setattr(ContextNet, "forward", failing_forward(0, []))
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"single window.*`window`") as err:
        ner.model.predict([trained.make_doc(STORY * 20)])
    assert "batch_wordpieces" in str(err.value)


def test_oom_in_training_is_raised_with_advice(fresh, monkeypatch):
    calls = []
    monkeypatch.setattr(ContextNet, "forward", failing_forward(0, calls))
    with pytest.raises(torch.cuda.OutOfMemoryError, match=r"training.*`batch_wordpieces`"):
        fresh.update(make_examples(fresh))
    # No retry in training: the first failed call is reported.
    assert len(calls) == 1


def test_bytes_and_disk_round_trips_are_bitwise(trained, saved, odd_texts):
    texts = [t for t, _ in TRAIN_DATA] + list(odd_texts.values()) + [STORY * 30]
    docs = [trained.make_doc(t) for t in texts]
    before = trained.get_pipe("ctx_ner").model.predict(docs)
    from_bytes = spacy.blank("en").from_config(trained.config).from_bytes(trained.to_bytes())
    for clone in (from_bytes, spacy.load(saved)):
        after = clone.get_pipe("ctx_ner").model.predict(docs)
        assert len(after) == len(before)
        for x, y in zip(before, after):
            np.testing.assert_array_equal(x, y)


def byte_leaves(value, path=""):
    """Every bytes value inside nested msgpack, except those that are msgpack themselves."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from byte_leaves(item, f"{path}/{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from byte_leaves(item, f"{path}[{i}]")
    elif isinstance(value, bytes):
        try:
            inner = srsly.msgpack_loads(value)
        except Exception:
            yield path, value
        else:
            yield from byte_leaves(inner, path)


def is_pickle(data: bytes) -> bool:
    # Pickle protocols 2-5 open with PROTO (0x80) and the protocol number.
    return len(data) > 1 and data[0] == 0x80 and data[1] in (2, 3, 4, 5)


def test_saved_model_has_no_pickle(saved):
    for path in (p for p in Path(saved).rglob("*") if p.is_file()):
        data = path.read_bytes()
        assert not is_pickle(data) and b"data.pkl" not in data, path
        assert b"\x80\x04\x95" not in data or path.name == "model", path
    leaves = dict(
        byte_leaves(srsly.msgpack_loads((Path(saved) / "ctx_ner" / "model").read_bytes()))
    )
    weights = [key for key in leaves if key.endswith("/weights")]
    assert len(weights) == 1
    # The only binary leaf is safetensors (a JSON header + raw tensors); the rest is text.
    assert "encoder.embeddings.word_embeddings.weight" in load_safetensors(leaves.pop(weights[0]))
    assert any(key.endswith("tokenizer_files/tokenizer.json") for key in leaves)
    for key, data in leaves.items():
        data.decode("utf8")
        assert not is_pickle(data), key


def test_window_over_max_position_embeddings_fails_at_add_pipe(tiny_bert):
    with pytest.raises(ValueError, match=r"window=256.*max_position_embeddings=128"):
        make_nlp(tiny_bert, window=256, max_position_embeddings=128)


def test_unknown_position_extension_lists_allowed_values(tiny_bert):
    with pytest.raises(ValueError, match="'stretch'.*'none', 'copy', 'interpolate'"):
        make_nlp(tiny_bert, position_extension="stretch")


def test_window_beyond_encoder_positions_fails_at_initialize(tiny_bert):
    nlp = make_nlp(tiny_bert, window=256)
    with pytest.raises(ValueError, match=r"window=256.*\(128\).*max_position_embeddings"):
        nlp.initialize(lambda: make_examples(nlp))


def test_pipe_with_two_processes(saved, one_torch_thread):
    nlp = spacy.load(saved)
    texts = [t for t, _ in TRAIN_DATA] + ["", STORY * 5, "Mary \u200b in 東京 ."]
    # The parent runs torch on its full thread pool first: a child forked after that hung
    # on its first op until the package set one thread in forked children.
    torch.set_num_threads(one_torch_thread)
    try:
        single = [entities(doc) for doc in nlp.pipe(texts)]
        multi = [entities(doc) for doc in nlp.pipe(texts, n_process=2, batch_size=2)]
    finally:
        torch.set_num_threads(1)
    assert multi == single


def test_interrupted_training_leaves_loadable_models(tiny_bert, tmp_path, monkeypatch):
    from spacy.cli.train import train

    nlp = make_nlp(tiny_bert, window=64, context=8, mixed_precision=None)
    nlp.config.to_disk(tmp_path / "config.cfg")
    DocBin(docs=[eg.reference for eg in make_examples(nlp)]).to_disk(tmp_path / "train.spacy")
    update, calls = CtxNER.update, []

    def crash_on_fourth_update(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("simulated crash")
        return update(self, *args, **kwargs)

    monkeypatch.setattr(CtxNER, "update", crash_on_fourth_update)
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
        "training.max_steps": 20,
        "training.eval_frequency": 2,
    }
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "config.cfg", tmp_path / "out", overrides=overrides)
    for name in ("model-best", "model-last"):
        loaded = spacy.load(tmp_path / "out" / name)
        assert_valid(loaded(STORY * 3))


def test_loading_never_offers_to_run_code_from_the_model(saved, monkeypatch):
    from spacy_ctxext.encoder import deserialize_net

    model = srsly.msgpack_loads((Path(saved) / "ctx_ner" / "model").read_bytes())
    shim = srsly.msgpack_loads(model["shims"][1][0])
    net = srsly.msgpack_loads(shim["state"])
    config = srsly.json_loads(net["config"])
    config.update(model_type="crafted", auto_map={"AutoConfig": "crafted.Config"})
    net["config"] = srsly.json_dumps(config)
    net["tokenizer_files"]["crafted.py"] = b"raise SystemExit('model code ran')\n"
    prompts = []
    monkeypatch.setattr("builtins.input", lambda *args: prompts.append(args) or "n")
    with pytest.raises(ValueError, match="custom code"):
        deserialize_net(ContextNet(), srsly.msgpack_dumps(net), torch.device("cpu"))
    assert prompts == []
    # Without the .py file, transformers itself must refuse (no prompt) the auto_map.
    del net["tokenizer_files"]["crafted.py"]
    with pytest.raises(ValueError):
        deserialize_net(ContextNet(), srsly.msgpack_dumps(net), torch.device("cpu"))
    assert prompts == []
