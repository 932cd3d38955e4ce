"""Architecture settings are checked early; worker processes run torch."""

import pytest
import spacy
from util import STORY, TRAIN_DATA, encoder_of, entities, make_examples, make_nlp, torch_threads

from spacy_ctxext.models.settings import EncoderSettings


def test_window_over_max_position_embeddings_fails_at_add_pipe(tiny_bert):
    with pytest.raises(ValueError, match=r"window=256 needs more positions .* \(128\)"):
        make_nlp(tiny_bert, window=256, max_position_embeddings=128)


def test_unknown_position_extension_lists_allowed_values(tiny_bert):
    with pytest.raises(ValueError, match="'stretch'.*'none', 'copy', 'interpolate'"):
        make_nlp(tiny_bert, position_extension="stretch")


def test_window_beyond_encoder_positions_fails_at_initialize(tiny_bert):
    nlp = make_nlp(tiny_bert, window=256)
    with pytest.raises(ValueError, match=r"window=256.*\(128\).*max_position_embeddings"):
        nlp.initialize(lambda: make_examples(nlp))


@pytest.mark.slow  # starts worker processes
def test_pipe_with_two_processes(saved, one_torch_thread):
    nlp = spacy.load(saved)
    texts = [t for t, _ in TRAIN_DATA] + ["", STORY * 5, "Mary \u200b in 東京 ."]
    # The parent runs torch on its full thread pool first: a child forked after that hung
    # on its first op until the package set one thread in forked children.
    with torch_threads(one_torch_thread):
        single = [entities(doc) for doc in nlp.pipe(texts)]
        multi = [entities(doc) for doc in nlp.pipe(texts, n_process=2, batch_size=2)]
    assert multi == single


def test_window_check_counts_the_special_tokens(tiny_bert, trained_nlp, usage_settings):
    # 64 - 2 special tokens leaves 62: context 31 on each side leaves nothing to predict.
    nlp = make_nlp(tiny_bert, window=64, context=31)
    with pytest.raises(ValueError, match=r"context=31.*window of 64 wordpieces \(62 after 2"):
        nlp.initialize(lambda: make_examples(nlp))
    before = EncoderSettings.of(encoder_of(trained_nlp))
    with pytest.raises(ValueError, match="62 after 2 special tokens"):
        usage_settings(window=64, context=31)
    with pytest.raises(ValueError, match=r"\['name'\] cannot change after training"):
        usage_settings(name="other")
    assert EncoderSettings.of(encoder_of(trained_nlp)) == before  # refused: nothing kept


def test_no_docs_give_no_arrays(trained_nlp):
    classifier = trained_nlp.get_pipe("ctx_ner").model
    for model in (classifier, classifier.layers[0]):
        assert model.predict([]) == []
        arrays, backprop = model.begin_update([])
        assert arrays == [] and backprop([]) == []
