"""Growing absolute position tables beyond the pretrained range."""

import pytest
import torch
from util import TINY_SIZES, wordpiece_tokenizer

from spacy_ctxext.models.pytorch.net_loading import load_pretrained
from spacy_ctxext.models.pytorch.net_serialization import deserialize_net, serialize_net
from spacy_ctxext.models.pytorch.positions import (
    extend_position_embeddings,
    find_position_embeddings,
    position_offset,
    usable_positions,
)
from spacy_ctxext.models.settings import EncoderSettings


def load(path, target, method):
    return load_pretrained(
        EncoderSettings(
            name=path,
            max_position_embeddings=target,
            position_extension=method,
            attention_dropout=None,
        )
    ).net


@pytest.fixture(scope="module")
def original(tiny_bert_64):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert_64)
    return model.embeddings.position_embeddings.weight.detach().clone()


def table(net) -> torch.Tensor:
    return net.encoder.embeddings.position_embeddings.weight.detach()


def forward(net, length: int = 200) -> torch.Tensor:
    torch.manual_seed(0)
    vocab = net.encoder.config.vocab_size
    input_ids = torch.randint(5, vocab, (1, length))
    mask = torch.ones_like(input_ids)
    net.encoder.eval()
    with torch.no_grad():
        return net.encoder(input_ids=input_ids, attention_mask=mask)[0]


def check_extended(net, target: int = 256) -> None:
    encoder = net.encoder
    assert encoder.config.max_position_embeddings == target
    embeddings = encoder.embeddings
    assert embeddings.position_embeddings.num_embeddings == target
    assert embeddings.position_ids.shape[-1] == target
    assert embeddings.position_ids[0].tolist() == list(range(target))
    assert embeddings.token_type_ids.shape[-1] == target
    assert not embeddings.token_type_ids.any()
    assert usable_positions(encoder) == target
    out = forward(net)
    assert out.shape == (1, 200, encoder.config.hidden_size)
    assert torch.isfinite(out).all()


def test_unextended(tiny_bert_64, original):
    net = load(tiny_bert_64, None, "none")
    assert usable_positions(net.encoder) == 64
    assert net.encoder.config.max_position_embeddings == 64
    torch.testing.assert_close(table(net), original, rtol=0, atol=0)
    # Loading at the pretrained size, or below it, changes nothing.
    for target in (64, 32):
        net = load(tiny_bert_64, target, "none")
        assert usable_positions(net.encoder) == 64
        torch.testing.assert_close(table(net), original, rtol=0, atol=0)


def test_copy(tiny_bert_64, original):
    net = load(tiny_bert_64, 256, "copy")
    grown = table(net)
    assert grown.shape == (256, original.shape[1])
    torch.testing.assert_close(grown[:64], original, rtol=0, atol=0)
    torch.testing.assert_close(grown[64:128], original, rtol=0, atol=0)
    torch.testing.assert_close(grown[192:256], original, rtol=0, atol=0)
    check_extended(net)


def test_copy_to_a_size_not_a_multiple(tiny_bert_64, original):
    net = load(tiny_bert_64, 100, "copy")
    grown = table(net)
    assert grown.shape[0] == 100
    torch.testing.assert_close(grown[64:100], original[:36], rtol=0, atol=0)
    assert usable_positions(net.encoder) == 100


def test_interpolate(tiny_bert_64, original):
    net = load(tiny_bert_64, 256, "interpolate")
    grown = table(net)
    assert grown.shape == (256, original.shape[1])
    torch.testing.assert_close(grown[0], original[0])
    torch.testing.assert_close(grown[-1], original[-1])
    # Every new row lies between the two pretrained rows around it.
    scale = 63 / 255
    for row in (1, 100, 200, 254):
        x = row * scale
        lo, hi = int(x), min(int(x) + 1, 63)
        weight = x - lo
        expected = (1 - weight) * original[lo] + weight * original[hi]
        torch.testing.assert_close(grown[row], expected, rtol=1e-5, atol=1e-5)
    assert not torch.equal(grown[64:128], original)
    check_extended(net)


def test_extended_forward_differs_only_by_positions(tiny_bert_64):
    # Within the pretrained range, the copy-extended encoder reads exactly as before.
    base = load(tiny_bert_64, None, "none")
    grown = load(tiny_bert_64, 256, "copy")
    torch.testing.assert_close(forward(base, 60), forward(grown, 60))


def test_none_refuses_to_grow(tiny_bert_64):
    with pytest.raises(ValueError, match="position_extension"):
        load(tiny_bert_64, 256, "none")


def tiny_roberta():
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    sizes = {**TINY_SIZES, "num_hidden_layers": 1, "intermediate_size": 37}
    config = RobertaConfig(vocab_size=100, max_position_embeddings=66, pad_token_id=1, **sizes)
    return RobertaModel(config)


def test_roberta_offset_copy():
    model = tiny_roberta()
    module = find_position_embeddings(model)
    assert module is model.embeddings
    assert position_offset(module) == 2
    assert usable_positions(model) == 64
    old = model.embeddings.position_embeddings.weight.detach().clone()
    extend_position_embeddings(model, 130, "copy")
    new = model.embeddings.position_embeddings.weight.detach()
    assert new.shape == (130, 32)
    # The rows before the first real position stay where they were.
    torch.testing.assert_close(new[:2], old[:2], rtol=0, atol=0)
    # Real positions are tiled after them.
    torch.testing.assert_close(new[2:66], old[2:66], rtol=0, atol=0)
    torch.testing.assert_close(new[66:130], old[2:66], rtol=0, atol=0)
    assert model.embeddings.position_embeddings.padding_idx == 1
    assert model.config.max_position_embeddings == 130
    assert usable_positions(model) == 128
    # A 128-wordpiece input (positions 2..129) now runs.
    torch.manual_seed(1)
    input_ids = torch.randint(3, 100, (1, 128))
    model.eval()
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))[0]
    assert out.shape == (1, 128, 32)
    assert torch.isfinite(out).all()


def test_roberta_offset_interpolate():
    model = tiny_roberta()
    old = model.embeddings.position_embeddings.weight.detach().clone()
    extend_position_embeddings(model, 130, "interpolate")
    new = model.embeddings.position_embeddings.weight.detach()
    assert new.shape == (130, 32)
    torch.testing.assert_close(new[:2], old[:2], rtol=0, atol=0)
    torch.testing.assert_close(new[2], old[2])
    torch.testing.assert_close(new[-1], old[-1])
    assert usable_positions(model) == 128


def test_extension_is_a_no_op_below_the_table():
    model = tiny_roberta()
    old = model.embeddings.position_embeddings.weight.detach().clone()
    extend_position_embeddings(model, 50, "none")
    extend_position_embeddings(model, 66, "copy")
    torch.testing.assert_close(model.embeddings.position_embeddings.weight, old, rtol=0, atol=0)
    assert model.config.max_position_embeddings == 66


def test_rotary_model_has_no_table():
    class Rotary(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("Config", (), {"max_position_embeddings": 512})()
            self.layer = torch.nn.Linear(4, 4)

    model = Rotary()
    assert find_position_embeddings(model) is None
    assert usable_positions(model) == 512
    extend_position_embeddings(model, 4096, "none")
    # The pretrained length stays in the config: HF's rope scaling reads it.
    assert model.config.max_position_embeddings == 512
    assert usable_positions(model) == 4096


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer rotary encoder (Llama) pretrained on 64 positions, with a WordPiece vocab."""
    from transformers import BertTokenizerFast, LlamaConfig, LlamaModel

    folder = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = wordpiece_tokenizer(folder, BertTokenizerFast)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        **TINY_SIZES,
    )
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize(
    "rope_scaling",
    [
        {"rope_type": "linear", "factor": 4.0},
        {"rope_type": "dynamic", "factor": 4.0},
        {"rope_type": "yarn", "factor": 4.0},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
    ],
    ids=["linear", "dynamic", "yarn", "yarn-original"],
)
def test_rope_scaling_acts_and_survives_save_and_load(tiny_llama, rope_scaling):
    def build(scaling):
        return load_pretrained(
            EncoderSettings(
                name=tiny_llama,
                max_position_embeddings=256,
                rope_scaling=scaling,
                attention_dropout=None,
                attn_implementation="eager",
            )
        )

    plain, (scaled, tokenizer) = build(None).net, build(rope_scaling)
    assert usable_positions(scaled.encoder) == 256
    ids = (torch.arange(200) % 90 + 5)[None]  # beyond the 64 pretrained positions
    with torch.no_grad():
        unscaled_out = plain.encoder(input_ids=ids).last_hidden_state
        scaled_out = scaled.encoder(input_ids=ids).last_hidden_state
        data = serialize_net(scaled, tokenizer, {})
        loaded = deserialize_net(data, torch.device("cpu"), {}).net
        loaded_out = loaded.encoder(input_ids=ids).last_hidden_state
    assert not torch.allclose(unscaled_out, scaled_out, atol=1e-4)  # the scaling is in effect
    torch.testing.assert_close(loaded_out, scaled_out, rtol=0, atol=0)  # and the same loaded
    assert usable_positions(loaded.encoder) == 256
