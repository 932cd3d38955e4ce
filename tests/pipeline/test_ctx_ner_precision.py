"""ctx_ner is fast by default (issue #24): a new ctx_ner's encoder has cpu_precision "auto",
the component says what it chose, and exact fp32 is one setting away and survives a save."""

import spacy
from util import TRAIN_DATA, encoder_of, entities

from spacy_ctxext.models.pytorch.compute_dtype import AUTO_ENV
from spacy_ctxext.models.settings import EncoderSettings

FP32 = {"components": {"ctx_ner": {"model": {"encoder": {"cpu_precision": "fp32"}}}}}
AUTO = {"components": {"ctx_ner": {"model": {"encoder": {"cpu_precision": "auto"}}}}}
TEXTS = [text for text, _ in TRAIN_DATA] + [" ".join(text for text, _ in TRAIN_DATA)]


def test_a_new_ctx_ner_is_auto():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("ctx_ner")
    encoder = nlp.config["components"]["ctx_ner"]["model"]["encoder"]
    assert encoder["@architectures"] == "spacy-ctxext.ContextExtendedTransformer.v4"
    assert encoder["cpu_precision"] == "auto"
    assert EncoderSettings.of_classifier(pipe.model).cpu_precision == "auto"


def test_auto_says_what_it_chose(saved, monkeypatch):
    nlp = spacy.load(saved, config=AUTO)
    for forced in ("bf16", "int8", "fp32"):
        monkeypatch.setenv(AUTO_ENV, forced)
        assert nlp.get_pipe("ctx_ner").precision == forced


def test_auto_finds_the_entities_of_fp32_and_pipe_equals_call(saved, monkeypatch):
    monkeypatch.setenv(AUTO_ENV, "int8")
    fp32, auto = spacy.load(saved, config=FP32), spacy.load(saved, config=AUTO)
    assert fp32.get_pipe("ctx_ner").precision == "fp32"
    one_by_one = [entities(auto(text)) for text in TEXTS]
    assert one_by_one == [entities(fp32(text)) for text in TEXTS]
    for batch_size in (1, 4):
        assert [entities(doc) for doc in auto.pipe(TEXTS, batch_size=batch_size)] == one_by_one


def test_fp32_from_the_load_config_survives_a_round_trip(saved, tmp_path, monkeypatch):
    monkeypatch.setenv(AUTO_ENV, "int8")
    nlp = spacy.load(saved, config=FP32)
    nlp.to_disk(tmp_path / "fp32")
    again = spacy.load(tmp_path / "fp32")
    assert again.get_pipe("ctx_ner").precision == "fp32"
    assert EncoderSettings.of(encoder_of(again)).cpu_precision == "fp32"
