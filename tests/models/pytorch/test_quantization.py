"""cpu_precision = "int8": an int8 copy of the encoder at CPU inference, fp32 everywhere else."""

import numpy as np
import pytest
import spacy
import torch
from util import STORY, TRAIN_DATA, encoder_of, entities, make_examples, make_nlp

from spacy_ctxext.models.encoder_layer import get_net
from spacy_ctxext.models.encoder_shim import encoder_shim
from spacy_ctxext.models.pytorch import quantization
from spacy_ctxext.models.pytorch.quantization import CpuQuantizeWarning, Int8Encoder
from spacy_ctxext.models.settings import EncoderSettings
from spacy_ctxext.warn_once import WarnOnce

INT8 = {"components": {"ctx_ner": {"model": {"encoder": {"cpu_precision": "int8"}}}}}
TEXTS = [STORY * 3, TRAIN_DATA[0][0], STORY * 7 + "Mary .", "Paris", STORY]


def logits(nlp, docs):
    return np.concatenate(nlp.get_pipe("ctx_ner").model.predict(docs))


@pytest.fixture(scope="module")
def int8_nlp(saved):
    return spacy.load(saved, config=INT8)


def test_int8_at_load_runs_the_quantized_copy(int8_nlp):
    assert EncoderSettings.of(encoder_of(int8_nlp)).cpu_precision == "int8"
    int8_nlp(STORY)
    copy = encoder_shim(encoder_of(int8_nlp)).inference_encoder
    assert isinstance(copy, Int8Encoder)
    linears = [m for m in copy.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == []  # every Linear of the copy is int8


def test_bad_value_fails_at_add_pipe(tiny_bert):
    with pytest.raises(ValueError, match="cpu_precision"):
        make_nlp(tiny_bert, cpu_precision="int4")


def test_logits_close_to_fp32(saved, int8_nlp):
    fp32 = spacy.load(saved)
    docs = [fp32.make_doc(text) for text in TEXTS]
    a, b = logits(fp32, docs), logits(int8_nlp, docs)
    assert not np.array_equal(a, b)  # quantized: not the fp32 path
    # 2% of the logits' range; a broken scale or a transposed weight is off by far more.
    np.testing.assert_allclose(b, a, atol=0.02 * float(np.abs(a).max()))
    assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() > 0.98


@pytest.mark.parametrize("usage", [{"batch_wordpieces": 32}, {"window": 16, "context": 2}])
def test_identical_across_batches_and_budgets(int8_nlp, monkeypatch, usage):
    """Each wordpiece has its own activation scale: a batch-wide scale would move the
    logits by a quantization step (~1e-2 here), far above float rounding (~1e-7)."""
    encoder = encoder_of(int8_nlp)
    for key, value in usage.items():
        monkeypatch.setitem(encoder.attrs, key, value)
    docs = [int8_nlp.make_doc(text) for text in TEXTS]
    alone = [logits(int8_nlp, [doc]) for doc in docs]
    tags = [int8_nlp.get_pipe("ctx_ner").predict([doc])[0].tags for doc in docs]
    for budget in (32, 64, 4096):
        monkeypatch.setitem(encoder.attrs, "batch_wordpieces", budget)
        for order in (slice(None), slice(None, None, -1)):
            got = logits(int8_nlp, docs[order])
            np.testing.assert_allclose(got, np.concatenate(alone[order]), rtol=1e-5, atol=1e-5)
            decoded = int8_nlp.get_pipe("ctx_ner").predict(docs[order])
            for d, t in zip(decoded, tags[order]):
                np.testing.assert_array_equal(d.tags, t)


def test_pipe_equals_call(int8_nlp):
    one_by_one = [entities(int8_nlp(text)) for text in TEXTS]
    for batch_size in (1, 2, 5):
        assert [entities(d) for d in int8_nlp.pipe(TEXTS, batch_size=batch_size)] == one_by_one


def test_saved_pipeline_stays_fp32(saved, tmp_path):
    nlp = spacy.load(saved, config=INT8)
    before = nlp.to_bytes()
    weights = {k: v.clone() for k, v in get_net(encoder_of(nlp)).state_dict().items()}
    list(nlp.pipe(TEXTS))
    net = get_net(encoder_of(nlp))
    assert isinstance(encoder_shim(encoder_of(nlp)).inference_encoder, Int8Encoder)
    assert nlp.to_bytes() == before
    state = net.state_dict()
    assert state.keys() == weights.keys()
    assert all(torch.equal(state[k], v) and v.dtype == torch.float32 for k, v in weights.items())
    nlp.to_disk(tmp_path / "model")
    assert spacy.load(tmp_path / "model").to_bytes() == before


def test_training_is_fp32_and_the_copy_follows_the_weights(saved):
    fp32, int8 = spacy.load(saved), spacy.load(saved, config=INT8)
    int8(STORY)  # the int8 copy exists before training
    examples = [make_examples(nlp) for nlp in (fp32, int8)]
    outputs = []
    for nlp, egs in zip((fp32, int8), examples):
        torch.manual_seed(0)  # the same dropout
        scores, _ = nlp.get_pipe("ctx_ner").model.begin_update([eg.x for eg in egs])
        outputs.append(np.concatenate(scores))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    losses = [{}, {}]
    for nlp, egs, loss in zip((fp32, int8), examples, losses):
        torch.manual_seed(0)
        nlp.update(egs, sgd=nlp.create_optimizer(), losses=loss)
    assert losses[0] == losses[1]
    trained = [get_net(encoder_of(nlp)).state_dict() for nlp in (fp32, int8)]
    assert all(torch.equal(v, trained[1][k]) for k, v in trained[0].items())
    # The copy is rebuilt from the new weights: as a fresh int8 load of them.
    reloaded = spacy.load(saved, config=INT8).from_bytes(int8.to_bytes())
    docs = [int8.make_doc(text) for text in TEXTS]
    np.testing.assert_array_equal(logits(int8, docs), logits(reloaded, docs))


def test_no_int8_kernels_falls_back_to_fp32(saved, monkeypatch):
    monkeypatch.setattr(quantization, "int8_matmul_error", lambda: "no int8 GEMM")
    monkeypatch.setattr(quantization, "_NO_INT8", WarnOnce(CpuQuantizeWarning))
    fp32, int8 = spacy.load(saved), spacy.load(saved, config=INT8)
    docs = [fp32.make_doc(text) for text in TEXTS]
    with pytest.warns(CpuQuantizeWarning, match=r"\(no int8 GEMM\): the encoder runs in fp32"):
        got = logits(int8, docs)
    np.testing.assert_array_equal(got, logits(fp32, docs))
    assert encoder_shim(encoder_of(int8)).inference_encoder is None


def test_int8_products_are_exact_here_and_the_layer_matches_fp32():
    assert quantization.int8_matmul_error() is None
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(3, 5, 64)
    got = quantization.Int8Linear(linear)(x)
    assert got.shape == (3, 5, 48)
    torch.testing.assert_close(got, linear(x).detach(), atol=0.03, rtol=0.03)
    # A row's output does not depend on the other rows (its own scale).
    torch.testing.assert_close(quantization.Int8Linear(linear)(x[1:2, 2:3]), got[1:2, 2:3])
