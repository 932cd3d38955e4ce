"""Channels fused into the encoder's input embeddings (issue #14)."""

import random

import numpy as np
import pytest
import spacy
import srsly
import torch
from spacy.tokens import Doc, Token
from spacy.training import Example
from util import (
    TRAIN_DATA,
    encoder_of,
    entities,
    make_examples,
    make_nlp,
    torch_threads,
    train_steps,
)

from spacy_ctxext.channels.builtins import CASING_CLASSES, AttrChannel
from spacy_ctxext.models.encoder_layer import get_net, plan_docs
from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.planning.batch_plan import split_batch

CASING = {"@misc": "spacy-ctxext.casing.v1"}
STOP = {"@misc": "spacy-ctxext.attr.v1", "attr": "IS_STOP"}
SECTION = {"@misc": "spacy-ctxext.attr.v1", "attr": "_.section", "max_values": 2}

if not Token.has_extension("section"):
    Token.set_extension("section", default=None)
if not Token.has_extension("bbox"):
    Token.set_extension("bbox", default=None)


def make_channel_nlp(tiny_bert, channels, **settings):
    return make_nlp(tiny_bert, mixed_precision=None, **settings, channels=channels)


def with_sections(nlp, data=TRAIN_DATA):
    examples = make_examples(nlp, data)
    for i, eg in enumerate(examples):
        for token in eg.x:
            token._.section = ("title", "body", "body")[i % 3]
    return examples


@pytest.fixture(scope="module")
def channel_nlp(tiny_bert, one_torch_thread):
    """casing + IS_STOP + _.section, initialized and briefly trained."""
    nlp = make_channel_nlp(tiny_bert, {"casing": CASING, "stop": STOP, "section": SECTION})
    return train_steps(nlp, with_sections(nlp), learn_rate=1e-2, steps=5)


def test_casing_ids():
    doc = spacy.blank("en")("apple Apple APPLE iPhone 2024 , A €")
    ids = spacy.registry.misc.get("spacy-ctxext.casing.v1")().token_ids(doc)
    names = [CASING_CLASSES[i] for i in ids]
    assert names == ["lower", "Title", "UPPER", "mixed", "digits", "punct", "Title", "other"]


def test_casing_of_a_batch_is_each_docs_from_their_flags():
    """Classes looked up by ORTH (remembered per channel, forgotten past max_known) are
    those of the tokens' own flags, doc by doc and for the docs end to end."""
    nlp = spacy.blank("en")
    texts = ["Apple apple APPLE", "iPhone 2024 , A €", "", "apple Mary MARY x1"] * 3
    docs = [nlp(t) for t in texts]
    channel = spacy.registry.misc.get("spacy-ctxext.casing.v1")()
    channel.max_known = 4
    flags = ("is_digit", "is_punct", "is_title", "is_upper", "is_lower", "is_alpha")
    for doc in docs:
        expected = [
            next((c for f, c in zip(flags, (5, 6, 2, 3, 1, 4)) if getattr(t, f)), 0) for t in doc
        ]
        assert channel.token_ids(doc).tolist() == expected
        assert len(channel._known) <= channel.max_known + max(len(d) for d in docs)
    assert len(channel._known) < len({t.orth for doc in docs for t in doc})  # forgotten
    joined = np.concatenate([channel.token_ids(doc) for doc in docs])
    assert channel.batch_token_ids(docs).tolist() == joined.tolist()


def test_every_wordpiece_of_a_token_gets_its_channel(tiny_bert, one_torch_thread):
    nlp = make_channel_nlp(tiny_bert, {"casing": CASING})
    nlp.initialize(lambda: make_examples(nlp))
    doc = nlp.make_doc("Apple apple APPLE")  # a ##p ##p ##l ##e for each (tiny vocab)
    (batch,) = plan_docs(encoder_of(nlp), [doc]).batches
    title, lower, upper = (1 + CASING_CLASSES.index(c) for c in ("Title", "lower", "UPPER"))
    expected = [0] + [title] * 5 + [lower] * 5 + [upper] * 5 + [0]  # [CLS], [SEP]: nothing
    assert batch.channel_ids[0, :, 0].tolist() == expected


def test_attr_vocabulary_built_at_initialize_and_saved(channel_nlp, tmp_path):
    channels = encoder_shim(encoder_of(channel_nlp)).channels
    assert channels["section"].values == ["body", "title"]  # most frequent first
    assert channels["stop"].values == [0, 1] and channels["stop"].n_values == 3
    channel_nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    assert encoder_shim(encoder_of(loaded)).channels["section"].values == ["body", "title"]
    doc = loaded.make_doc("Mary went home")
    for token, value in zip(doc, ("title", "appendix", None)):
        token._.section = value
    loaded_channels = encoder_shim(encoder_of(loaded)).channels
    assert loaded_channels["section"].token_ids(doc).tolist() == [2, 0, 0]


def test_round_trip_and_pipe_equal_call(channel_nlp, tmp_path):
    texts = [text for text, _ in TRAIN_DATA] + ["Mary met Peter in Paris and London ."]
    docs = list(channel_nlp.pipe(texts, batch_size=2))
    assert [entities(channel_nlp(t)) for t in texts] == [entities(d) for d in docs]
    channel_nlp.to_disk(tmp_path / "nlp")
    loaded = spacy.load(tmp_path / "nlp")
    reloaded = list(loaded.pipe(texts, batch_size=2))  # the same padding as `docs`
    assert [entities(d) for d in reloaded] == [entities(d) for d in docs]
    for old, new in zip(docs, reloaded):
        assert new.spans["ctx_ner"].attrs["scores"] == old.spans["ctx_ner"].attrs["scores"]
    table = get_net(encoder_of(loaded)).channel_embeddings.weight
    assert table.abs().sum() > 0 and table[0].abs().sum() == 0  # trained; row 0 stays 0


def test_fresh_model_with_channels_equals_the_encoder(tiny_bert, one_torch_thread):
    """Zero-initialised tables: before training, channels change no output."""
    plain = make_nlp(tiny_bert, mixed_precision=None, window=16, context=4)
    fused = make_channel_nlp(tiny_bert, {"casing": CASING, "stop": STOP}, window=16, context=4)
    plain.initialize(lambda: make_examples(plain))
    fused.initialize(lambda: make_examples(fused))
    docs = [plain.make_doc(" ".join([text] * 4)) for text, _ in TRAIN_DATA]  # several windows
    assert len(plan_docs(encoder_of(fused), docs).batches[0].input_ids) > len(docs)
    for a, b in zip(encoder_of(plain).predict(docs), encoder_of(fused).predict(docs)):
        assert np.array_equal(a, b)


def test_split_batch_splits_channel_ids(channel_nlp):
    docs = [channel_nlp.make_doc(text) for text, _ in TRAIN_DATA]
    (batch,) = plan_docs(encoder_of(channel_nlp), docs).batches
    first, second = split_batch(batch)
    assert np.array_equal(
        np.concatenate([first.channel_ids, second.channel_ids]), batch.channel_ids
    )
    assert first.channel_ids.shape[:2] == first.input_ids.shape


def test_gazetteer_bio_from_patterns(tmp_path):
    path = tmp_path / "patterns.jsonl"
    rows = [{"label": "LOC", "pattern": "New York"}, {"label": "ORG", "pattern": "Reuters"}]
    srsly.write_jsonl(path, rows + [{"label": "LOC", "pattern": "York"}])
    channel = spacy.registry.misc.get("spacy-ctxext.gazetteer.v1")(str(path))
    channel.initialize([])
    assert channel.labels == ["LOC", "ORG"] and channel.n_values == 5
    doc = spacy.blank("en")("reuters said new york and York .")
    # O=0, B-LOC=1, I-LOC=2, B-ORG=3, I-ORG=4; the longest match wins an overlap.
    assert channel.token_ids(doc).tolist() == [3, 0, 1, 2, 0, 1, 0]
    strict = spacy.registry.misc.get("spacy-ctxext.gazetteer.v1")(str(path), ignore_case=False)
    strict.from_state(channel.to_state())  # the patterns travel in the state, not the file
    assert strict.token_ids(doc).tolist() == [0, 0, 0, 0, 0, 1, 0]


def test_missing_attributes_give_one_clear_error(tiny_bert):
    nlp = make_channel_nlp(
        tiny_bert, {"boxes": {"@misc": "spacy-ctxext.layout.v1", "attr": "nobox"}}
    )
    with pytest.raises(ValueError, match=r"'boxes' reads token\._\.nobox.*set_extension"):
        nlp.initialize(lambda: make_examples(nlp))
    nlp = make_channel_nlp(tiny_bert, {"boxes": {"@misc": "spacy-ctxext.layout.v1"}})
    with pytest.raises(ValueError, match=r"'boxes': \d+ token\(s\) have token\._\.bbox = None"):
        nlp.initialize(lambda: make_examples(nlp))
    nlp = make_channel_nlp(
        tiny_bert, {"ents": {"@misc": "spacy-ctxext.attr.v1", "attr": "ENT_TYPE"}}
    )
    with pytest.raises(ValueError, match="'ents' reads ENT_TYPE.*annotating_components"):
        nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match="Unknown token attribute 'NOPE'"):
        AttrChannel("NOPE", 10)


def test_builder_names_copies_and_leaves_the_given_channels_alone():
    from spacy_ctxext.models.architectures import build_context_extended_transformer

    given = AttrChannel("IS_STOP", 4)
    model = build_context_extended_transformer(channels={"stop": given, "odd": "x"})
    channels = encoder_shim(model).channels  # held before the net is loaded
    assert given.name == "" and channels["stop"].name == "stop"
    assert channels["stop"] is not given and channels["stop"].attr == given.attr
    assert channels["odd"] == "x"  # not a channel: reported at initialize (table_rows)


def test_out_of_range_boxes_are_counted():
    channel = spacy.registry.misc.get("spacy-ctxext.layout.v1")()
    channel.name = "layout"
    doc = spacy.blank("en")("a b c")
    for token, box in zip(doc, [(0, 0, 10, 10), (0, 0, 2000, 10), (50, 0, 10, 10)]):
        token._.bbox = box
    with pytest.raises(ValueError, match="'layout': 1 token box.*outside 0..1000 and 1 with x1"):
        channel.token_ids(doc)


ROWS = (100, 300, 600, 800)  # y of the page's lines; tokens on the top two are entities


def layout_examples(nlp, n_docs, seed):
    rng = random.Random(seed)
    examples = []
    for _ in range(n_docs):
        doc = Doc(nlp.vocab, words=["cell"] * 8)
        spans = []
        for token in doc:
            x, y = rng.choice((50, 400, 700)), rng.choice(ROWS)
            token._.bbox = (x, y, x + 100, y + 40)
            if y < 500:
                spans.append((token.idx, token.idx + 4, "TOP"))
        examples.append(Example.from_dict(doc, {"entities": spans}))
    return examples


def layout_accuracy(tiny_bert, channels):
    """Token accuracy (TOP or not) on held-out docs after a short training."""
    nlp = make_channel_nlp(tiny_bert, channels)
    train, test = layout_examples(nlp, 24, seed=0), layout_examples(nlp, 12, seed=1)
    torch.manual_seed(0)
    optimizer = nlp.initialize(lambda: train)
    optimizer.learn_rate = 5e-3
    for step in range(40):
        nlp.update(train[(step % 3) * 8 : (step % 3 + 1) * 8], sgd=optimizer)
    docs = nlp.pipe([eg.x for eg in test])
    pairs = [
        (token.ent_type_ == "TOP", gold.ent_type_ == "TOP")
        for doc, eg in zip(docs, test)
        for token, gold in zip(doc, eg.reference)
    ]
    return sum(p == g for p, g in pairs) / len(pairs)


def test_layout_carries_what_the_text_cannot(tiny_bert):
    """Identical words whose label depends only on token._.bbox: learned with the
    layout channel, near chance (about half the tokens are TOP) without it."""
    with torch_threads(1):
        with_layout = layout_accuracy(tiny_bert, {"layout": {"@misc": "spacy-ctxext.layout.v1"}})
        without = layout_accuracy(tiny_bert, {})
    assert with_layout >= 0.9, with_layout
    assert without <= 0.7, without
