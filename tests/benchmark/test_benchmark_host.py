"""The benchmark's host path (--null-encoder) and its int8 path (--cpu-quantize), end to
end on the tiny random encoder (CPU)."""

import numpy as np
import pytest
import torch
from util import STORY, encoder_of, make_examples, make_nlp, torch_threads

from spacy_ctxext.benchmark.cli import main
from spacy_ctxext.benchmark.host import STAGES, NullEncoder, use_null_encoder, use_replay_encoder
from spacy_ctxext.models.encoder_layer import get_net
from spacy_ctxext.models.encoder_shim import encoder_shim

ARGV = ["--n-docs", "3", "--words", "300", "--batch-size", "2", "--threads", "1"]


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """main(--threads N) sets torch's thread count for the process: restore it."""
    with torch_threads(torch.get_num_threads()):
        yield


def test_null_encoder_times_every_stage(tiny_bert, tmp_path):
    argv = ["--encoder", tiny_bert, *ARGV, "--null-encoder", "--repeat", "3"]
    result = main(argv + ["--output", str(tmp_path / "host.json")])
    host = result["host"]
    stages = host["stages"]
    assert len(stages["ctx_ner_host_words_per_s_all"]) == 3
    for runner in ("stages", "stages_warm_cache", "stages_offset_path"):
        assert all(host[runner][f"{key}_words_per_s"] > 0 for key in STAGES)
        assert host[runner]["words"] == stages["words"]
    assert host["pipe_texts"]["words"] == host["pipe_docs"]["words"] == stages["words"] >= 900


def test_host_stages_with_the_pipelines_own_encoder(tiny_bert, tmp_path, capsys):
    argv = ["--encoder", tiny_bert, *ARGV, "--host-stages"]
    result = main(argv + ["--output", str(tmp_path / "host.json")])
    assert "own encoder, replayed" in capsys.readouterr().out
    stages = result["host"]["stages"]
    assert all(stages[f"{key}_words_per_s"] > 0 for key in STAGES)
    # 3 docs in batches of 2: the encoder ran once per batch (in the warm-up round) and
    # every timed round and nlp.pipe replayed its outputs.
    assert result["encoder_runs"] == 2


def test_replayed_encoder_predicts_as_the_encoder(trained_nlp):
    texts = [STORY, "Mary went to Paris .", STORY * 2]
    expected = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in trained_nlp.pipe(texts)]
    shim = encoder_shim(encoder_of(trained_nlp))
    replay = use_replay_encoder(trained_nlp)
    try:
        for _ in range(2):
            docs = list(trained_nlp.pipe(texts, batch_size=2))
            assert [[(e.start, e.end, e.label_) for e in d.ents] for d in docs] == expected
        assert replay.misses == 2  # the first round's two batches, replayed in the second
    finally:
        shim.inference_encoder = None


def test_null_encoder_replaces_only_the_inference_forward(tiny_bert):
    nlp = make_nlp(tiny_bert)
    nlp.initialize(lambda: make_examples(nlp))
    net, shim = get_net(encoder_of(nlp)), encoder_shim(encoder_of(nlp))
    use_null_encoder(nlp)
    assert isinstance(shim.inference_encoder, NullEncoder)
    # Not on the net: never saved or moved.
    assert not any(isinstance(m, NullEncoder) for m in net.modules())
    docs = [nlp.make_doc(STORY * 3)]
    scores = nlp.get_pipe("ctx_ner").model.predict(docs)[0]
    bias = net.head.bias.detach().numpy()
    assert np.allclose(scores[[not t.is_space for t in docs[0]]], bias)
    trained, _ = nlp.get_pipe("ctx_ner").model.begin_update(docs)  # training: the encoder
    assert not np.allclose(trained[0], bias)


@pytest.mark.spacy_transformers
def test_compare_precision_adds_path_q(tiny_bert, tmp_path):
    argv = ["--encoder", tiny_bert, *ARGV, "--compare-precision", "int8"]
    result = main(argv + ["--output", str(tmp_path / "benchmark.json")])
    assert set(result["paths"]) == {"a", "b", "c", "q"}
    assert set(result["ratios"]) == {"a/b", "a/c", "q/b", "q/a"}
