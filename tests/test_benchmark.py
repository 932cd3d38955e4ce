"""The throughput benchmark, end to end on the tiny random encoder (CPU, a few seconds)."""

import json
import os

import numpy as np
import pytest
import spacy
from spacy.tokens import DocBin

from spacy_ctxext.benchmark.cli import main, parse_args
from spacy_ctxext.benchmark.measure import reset_peak_rss, rss_mb
from spacy_ctxext.benchmark.pipelines import ctx_ner_pipeline
from spacy_ctxext.benchmark.texts import load_texts, synthetic_text


def test_synthetic_text_is_deterministic_english_like():
    text = synthetic_text(300, seed=3)
    assert text == synthetic_text(300, seed=3) != synthetic_text(300, seed=4)
    assert len(text.split()) == 300
    assert "\n\n" in text and text.endswith(".") and text[0].isupper()


def test_compare_three_paths(tiny_bert, tmp_path):
    output = tmp_path / "benchmark.json"
    argv = ["--encoder", tiny_bert, "--n-docs", "3", "--words", "300", "--batch-size", "2"]
    result = main(argv + ["--threads", "1", "--repeat", "3", "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(result))
    paths = result["paths"]
    assert set(paths) == {"a", "b", "c"}
    words = {run["words"] for run in paths.values()}
    assert len(words) == 1 and words.pop() >= 3 * 300  # spaCy tokens: words + punctuation
    for run in paths.values():
        assert run["words_per_s"] > 0 and run["seconds"] > 0 and run["rss_peak_mb"] > 0
        assert run["words_per_s"] == pytest.approx(run["words"] / run["seconds"])
        assert len(run["seconds_all"]) == 3 and run["seconds"] == sorted(run["seconds_all"])[1]
    wps = {key: run["words_per_s"] for key, run in paths.items()}
    assert result["ratios"]["a/b"] == pytest.approx(wps["a"] / wps["b"])
    assert result["ratios"]["a/c"] == pytest.approx(wps["a"] / wps["c"])
    assert result["docs"] == 3 and result["settings"]["batch_size"] == 2
    assert result["environment"]["torch_threads"] == 1


def test_scaling_runs_each_size_in_a_fresh_process(tiny_bert, tmp_path):
    output = tmp_path / "scaling.json"
    argv = ["--encoder", tiny_bert, "--random-weights", "--scaling", "200", "--threads", "1"]
    result = main(argv + ["--repeat", "3", "--output", str(output)])
    assert json.loads(output.read_text())["ratios"] == result["ratios"]
    small, large = result["scaling"]["small"], result["scaling"]["large"]
    assert 200 <= small["words"] < large["words"]
    for run in (small, large):
        assert run["seconds"] > 0 and run["rss_peak_mb"] >= run["rss_baseline_mb"] > 0
        assert len(run["rss_peak_mb_all"]) == 3
        assert run["rss_peak_mb"] == sorted(run["rss_peak_mb_all"])[1]
        assert run["rss_growth_mb"] == pytest.approx(run["rss_peak_mb"] - run["rss_baseline_mb"])
    ratios = result["ratios"]
    assert ratios["words"] == pytest.approx(large["words"] / small["words"])
    assert 8 < ratios["words"] < 12
    assert ratios["seconds"] == pytest.approx(large["seconds"] / small["seconds"])
    assert ratios["rss_peak_mb"] == pytest.approx(large["rss_peak_mb"] / small["rss_peak_mb"])
    assert "rss_growth_mb" in ratios


def test_scaling_with_a_trained_pipeline_counts_its_entities(tiny_bert, trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    argv = ["--encoder", tiny_bert, "--model", str(tmp_path / "model"), "--scaling", "100"]
    result = main(argv + ["--scale-factor", "2", "--output", str(tmp_path / "scaling.json")])
    for key, n_words in (("small", 100), ("large", 200)):
        doc = nlp(nlp.make_doc(synthetic_text(n_words, seed=0)))
        assert result["scaling"][key]["entities"] == len(doc.ents)


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's clear_refs"
)
def test_peak_rss_restarts_after_a_freed_allocation():
    block = np.ones(200 * 2**20 // 8)  # 200 MB, touched
    del block
    assert rss_mb() - rss_mb("VmRSS") > 150
    reset_peak_rss()
    assert rss_mb() - rss_mb("VmRSS") < 50


def test_random_head_is_the_same_in_every_process(tiny_bert):
    args = parse_args(["--encoder", tiny_bert, "--seed", "3"])
    text = synthetic_text(60, seed=0)
    first, second = (ctx_ner_pipeline(args, tiny_bert)(text) for _ in range(2))
    assert [t.ent_iob_ + t.ent_type_ for t in first] == [t.ent_iob_ + t.ent_type_ for t in second]
    assert first.spans["ctx_ner"].attrs["scores"] == second.spans["ctx_ner"].attrs["scores"]


def test_window_settings_reach_new_and_loaded_pipelines(tiny_bert, trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "model")
    for extra in ([], ["--model", str(tmp_path / "model")]):
        args = parse_args(["--encoder", tiny_bert, "--window", "64", "--context", "0"] + extra)
        encoder = ctx_ner_pipeline(args, tiny_bert).get_pipe("ctx_ner").model.layers[0]
        assert (encoder.attrs["window"], encoder.attrs["context"]) == (64, 0)
    too_long = ["--encoder", tiny_bert, "--model", str(tmp_path / "model"), "--window", "4096"]
    with pytest.raises(ValueError, match="positions"):
        ctx_ner_pipeline(parse_args(too_long), tiny_bert)


def test_load_texts_synthetic_or_from_a_docbin(tmp_path):
    assert load_texts(None, 2, 40, seed=5) == [synthetic_text(40, 5), synthetic_text(40, 6)]
    nlp = spacy.blank("en")
    texts = ["First doc here.", "Second one.", "Third."]
    DocBin(docs=[nlp(t) for t in texts]).to_disk(tmp_path / "docs.spacy")
    assert load_texts(str(tmp_path / "docs.spacy"), 2, 0, seed=0) == texts[:2]
    assert load_texts(str(tmp_path / "docs.spacy"), None, 0, seed=0) == texts
