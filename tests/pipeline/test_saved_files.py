"""Loading a saved ctx_ner whose files are missing, truncated or corrupt (issue #25): one
error naming the pipeline folder, the file and the fix; the version that saved it."""

import shutil
import warnings

import pytest
import spacy
import srsly
from util import entities, make_nlp

from spacy_ctxext.pipeline.saved_files import (
    MODEL_FILE_KEY,
    VERSION_KEY,
    SavedPipelineError,
    SavedVersionWarning,
    ctxext_version,
)

FIX = "Re-copy or re-package the pipeline"
TEXT = "John Smith visited New York on Monday ."


@pytest.fixture
def copy(saved, tmp_path):
    """A fresh copy of the saved pipeline, to damage."""
    return shutil.copytree(saved, tmp_path / "pipeline")


def load_error(path):
    with pytest.raises(SavedPipelineError) as caught:
        spacy.load(path)
    message = str(caught.value)
    assert str(path) in message and caught.value.__cause__ is None  # one error, not a chain
    return message


def edit_cfg(path, **changes):
    cfg = srsly.read_json(path / "ctx_ner" / "cfg")
    cfg.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del cfg[key]
    srsly.write_json(path / "ctx_ner" / "cfg", cfg)


def as_saved_before_the_record(path):
    """The pipeline as a spacy-ctxext without the version record saved it."""
    edit_cfg(path, **{VERSION_KEY: None, MODEL_FILE_KEY: None})


def edit_net(path, change):
    """Rewrite the encoder's serialized state inside ctx_ner/model with ``change(net)``."""
    file = path / "ctx_ner" / "model"
    file.write_bytes(edited_model(file.read_bytes(), change))


def edited_model(model_bytes, change):
    """The model's bytes with the encoder's serialized state rewritten by ``change(net)``."""
    model = srsly.msgpack_loads(model_bytes)
    shims = next(node for node in model["shims"] if node)
    shim = srsly.msgpack_loads(shims[0])
    net = srsly.msgpack_loads(shim["state"])
    change(net)
    shim["state"] = srsly.msgpack_dumps(net)
    shims[0] = srsly.msgpack_dumps(shim)
    return srsly.msgpack_dumps(model)


def test_cfg_records_the_version_and_the_model_file(saved):
    cfg = srsly.read_json(saved / "ctx_ner" / "cfg")
    assert cfg[VERSION_KEY] == ctxext_version()
    assert cfg[MODEL_FILE_KEY]["bytes"] == (saved / "ctx_ner" / "model").stat().st_size
    nlp = spacy.load(saved)
    assert VERSION_KEY not in nlp.get_pipe("ctx_ner").cfg  # the record is the file's only


def test_truncated_model_names_the_file_and_the_fix(copy):
    model = copy / "ctx_ner" / "model"
    size = model.stat().st_size
    model.write_bytes(model.read_bytes()[: size // 2])
    message = load_error(copy)
    assert f"{model} is truncated: {size // 2:,} bytes, {size:,} when it was saved" in message
    assert FIX in message


def test_truncated_model_of_an_older_pipeline_names_the_file(copy):
    as_saved_before_the_record(copy)
    model = copy / "ctx_ner" / "model"
    model.write_bytes(model.read_bytes()[:1000])
    message = load_error(copy)
    assert f"{model} is not a ctx_ner model file (ValueError: Unpack failed" in message
    assert FIX in message


def test_flipped_byte_is_caught_by_the_checksum(copy):
    model = copy / "ctx_ner" / "model"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # in the weights: would load, with one wrong number
    model.write_bytes(bytes(data))
    message = load_error(copy)
    assert f"{model} is corrupt: its sha256 differs" in message and FIX in message


@pytest.mark.parametrize("name", ["model", "cfg"])
def test_missing_file(copy, name):
    (copy / "ctx_ner" / name).unlink()
    message = load_error(copy)
    assert f"{copy / 'ctx_ner' / name} is missing" in message and FIX in message


def test_truncated_cfg(copy):
    cfg = copy / "ctx_ner" / "cfg"
    cfg.write_bytes(cfg.read_bytes()[:20])
    message = load_error(copy)
    assert f"{cfg} is not valid JSON: truncated or corrupt" in message and FIX in message


@pytest.mark.parametrize(
    "change, part",
    [
        (lambda net: net.update(weights=net["weights"][:100]), "the encoder's weights"),
        (lambda net: net.update(config="{"), "the encoder's config (config.json)"),
        (
            lambda net: net["tokenizer_files"].update({"tokenizer.json": b"\x00garbage"}),
            "the tokenizer files",
        ),
        (lambda net: net.pop("tokenizer_files"), "the encoder's serialized state"),
    ],
)
def test_corrupt_part_inside_the_model_file_is_named(copy, change, part):
    as_saved_before_the_record(copy)  # else the checksum speaks first
    edit_net(copy, change)
    message = load_error(copy)
    assert f"{copy / 'ctx_ner' / 'model'} does not read ({part}" in message and FIX in message


def test_corrupt_channel_vocabulary_is_named(tiny_bert, examples_with_stop, tmp_path):
    nlp = examples_with_stop
    nlp.to_disk(tmp_path / "channels")
    as_saved_before_the_record(tmp_path / "channels")
    edit_net(tmp_path / "channels", lambda net: net["channel_states"]["stop"].pop("values"))
    message = load_error(tmp_path / "channels")
    assert "does not read (the vocabulary of channel 'stop': KeyError" in message


@pytest.fixture
def examples_with_stop(tiny_bert):
    from util import make_examples

    stop = {"@misc": "spacy-ctxext.attr.v1", "attr": "IS_STOP"}
    nlp = make_nlp(tiny_bert, channels={"stop": stop})
    nlp.initialize(lambda: make_examples(nlp))
    return nlp


def test_older_pipeline_without_the_record_loads_silently(copy, trained_nlp):
    as_saved_before_the_record(copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SavedVersionWarning)
        loaded = spacy.load(copy)
    assert entities(loaded(TEXT)) == entities(trained_nlp(TEXT))


def test_other_version_warns_when_it_loads_and_says_so_when_it_fails(copy, trained_nlp):
    edit_cfg(copy, **{VERSION_KEY: "0.0.1"})
    with pytest.warns(SavedVersionWarning, match=r"saved by spacy-ctxext 0\.0\.1; this is"):
        loaded = spacy.load(copy)
    assert entities(loaded(TEXT)) == entities(trained_nlp(TEXT))
    model = copy / "ctx_ner" / "model"
    model.write_bytes(model.read_bytes()[:-10])
    message = load_error(copy)
    assert "saved by spacy-ctxext 0.0.1" in message and "spacy-ctxext==0.0.1" in message


def test_intact_file_that_does_not_fit_the_config_says_so(copy):
    """A file as saved that still fails is not a bad copy: the message says the config is."""
    config = spacy.util.load_config(copy / "config.cfg")
    stop = {"@misc": "spacy-ctxext.attr.v1", "attr": "IS_STOP"}
    # In the file: a load override cannot put a block where the config has null.
    config["components"]["ctx_ner"]["model"]["encoder"]["channels"] = {"stop": stop}
    config.to_disk(copy / "config.cfg")
    with pytest.raises(SavedPipelineError) as caught:
        spacy.load(copy)
    message = str(caught.value)
    assert f"{copy / 'ctx_ner' / 'model'} does not load (ValueError: The saved encoder" in message
    assert "as it was saved" in message and "config.cfg saved beside it" in message
    assert FIX not in message


def test_save_leaves_no_partial_file_when_interrupted(trained_nlp, tmp_path, monkeypatch):
    pipe = trained_nlp.get_pipe("ctx_ner")
    pipe.to_disk(tmp_path / "ctx_ner")
    before = (tmp_path / "ctx_ner" / "model").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("spacy_ctxext.io_atomic._flush_to_disk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipe.to_disk(tmp_path / "ctx_ner")
    assert (tmp_path / "ctx_ner" / "model").read_bytes() == before  # the old file, whole
    assert not list((tmp_path / "ctx_ner").glob(".*.tmp"))


def test_corrupt_part_in_bytes_is_named(trained_nlp):
    parts = srsly.msgpack_loads(trained_nlp.get_pipe("ctx_ner").to_bytes())
    parts["model"] = edited_model(parts["model"], lambda net: net.update(config="{"))
    pipe = spacy.blank("en").from_config(trained_nlp.config).get_pipe("ctx_ner")
    with pytest.raises(SavedPipelineError) as caught:
        pipe.from_bytes(srsly.msgpack_dumps(parts))
    message = str(caught.value)
    assert "'ctx_ner' component from bytes: the encoder's config (config.json)" in message
    assert "send or store them again, whole" in message and caught.value.__cause__ is None


def test_saved_without_the_model_records_no_model_file(trained_nlp, tmp_path):
    trained_nlp.get_pipe("ctx_ner").to_disk(tmp_path / "ctx_ner", exclude=["model"])
    cfg = srsly.read_json(tmp_path / "ctx_ner" / "cfg")
    assert cfg[VERSION_KEY] == ctxext_version() and MODEL_FILE_KEY not in cfg
    assert not (tmp_path / "ctx_ner" / "model").exists()
