"""Saving and loading the net: bitwise round trips, no pickle, no model code run."""

from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly
import torch
from safetensors.torch import load as load_safetensors
from util import STORY, TRAIN_DATA

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bytes_and_disk_round_trips_are_bitwise(trained_nlp, saved, odd_texts):
    texts = [t for t, _ in TRAIN_DATA] + list(odd_texts.values()) + [STORY * 30]
    docs = [trained_nlp.make_doc(t) for t in texts]
    before = trained_nlp.get_pipe("ctx_ner").model.predict(docs)
    from_bytes = (
        spacy.blank("en").from_config(trained_nlp.config).from_bytes(trained_nlp.to_bytes())
    )
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
        # torch.save writes a zip (PK) holding a data.pkl; safetensors in msgpack does not.
        assert not is_pickle(data) and b"data.pkl" not in data, path
        assert b"PK\x03\x04" not in data, path
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


def test_loading_never_offers_to_run_code_from_the_model(saved, monkeypatch):
    from spacy_ctxext.models.pytorch.net_serialization import deserialize_net

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
        deserialize_net(srsly.msgpack_dumps(net), torch.device("cpu"), {})
    assert prompts == []
    # Without the .py file, transformers itself must refuse (no prompt) the auto_map.
    del net["tokenizer_files"]["crafted.py"]
    with pytest.raises(ValueError):
        deserialize_net(srsly.msgpack_dumps(net), torch.device("cpu"), {})
    assert prompts == []
