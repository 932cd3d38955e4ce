"""The benchmark CLI: comparing three paths, scaling in fresh processes, the table and
the JSON it writes; end to end on the tiny random encoder (CPU)."""

import json
from pathlib import Path

import pytest
import torch
from util import torch_threads

from spacy_ctxext.benchmark import cli
from spacy_ctxext.benchmark.cli import child_command, format_table, main, parse_args
from spacy_ctxext.benchmark.texts import synthetic_text


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """main(--threads N) sets torch's thread count for the process: restore it."""
    with torch_threads(torch.get_num_threads()):
        yield


@pytest.mark.spacy_transformers
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
        assert len(run["seconds_all"]) == 3 and run["seconds"] == sorted(run["seconds_all"])[1]
    assert set(result["ratios"]) == {"a/b", "a/c"}
    assert result["docs"] == 3 and result["settings"]["batch_size"] == 2
    assert result["environment"]["torch_threads"] == 1


def test_compare_takes_each_path_median_run(monkeypatch):
    # Scripted seconds per round for 600 words: medians a 2 s, b 4 s, c 1 s.
    seconds = {"a": iter([3.0, 1.0, 2.0]), "b": iter([4.0, 5.0, 4.0]), "c": iter([1.0] * 3)}
    monkeypatch.setattr(cli, "load_texts", lambda *args: ["text"] * 5)
    monkeypatch.setattr(cli, "ctx_ner_pipeline", lambda args, encoder: "a")
    monkeypatch.setattr(cli, "build_spacy_transformers", lambda encoder, gpu: "b")
    monkeypatch.setattr(cli, "pipe_runner", lambda nlp, texts, size: lambda limit=None: nlp)
    monkeypatch.setattr(cli, "bare_encoder", lambda nlp, texts, size: lambda limit=None: "c")

    def timed(run, gpu):
        s = next(seconds[run()])
        return {"words": 600, "seconds": s, "words_per_s": 600 / s}

    monkeypatch.setattr(cli, "timed", timed)
    result = cli.compare(parse_args(["--repeat", "3"]), "encoder", gpu=False)
    assert result["docs"] == 5
    assert [result["paths"][k]["seconds"] for k in "abc"] == [2.0, 4.0, 1.0]
    assert result["paths"]["a"]["seconds_all"] == [3.0, 1.0, 2.0]
    assert result["ratios"] == {"a/b": 2.0, "a/c": 0.5}  # 300 words/s against 150 and 600


def fake_child(runs):
    """subprocess.run for scaling's children: writes the next scripted run of each size."""

    def run(cmd, check):
        n_words = int(cmd[cmd.index("--_child") + 1])
        output = Path(cmd[cmd.index("--output") + 1])
        output.write_text(json.dumps({"run": runs[n_words].pop(0)}))

    return run


def child_run(words, seconds, peak, baseline, doc_mb):
    return {
        "words": words,
        "seconds": seconds,
        "rss_peak_mb": peak,
        "rss_growth_mb": peak - baseline,
        "rss_pipeline_mb": peak - baseline - doc_mb,
    }


def test_scaling_ratios_of_the_median_peak_runs(monkeypatch):
    runs = {
        100: [child_run(100, 1.0, 500.0, 499.5, 0.1), child_run(100, 1.2, 520.0, 519.5, 0.1)],
        1000: [child_run(1000, 8.0, 600.0, 500.0, 10.0), child_run(1000, 9.0, 700.0, 500.0, 30)],
    }
    monkeypatch.setattr(cli.subprocess, "run", fake_child(runs))
    args = parse_args(["--scaling", "100", "--repeat", "2"])
    result = cli.scaling(args, "encoder")
    small, large = result["scaling"]["small"], result["scaling"]["large"]
    assert (small["seconds"], large["seconds"]) == (1.0, 8.0)  # the lower of two peaks
    assert large["rss_peak_mb_all"] == [600.0, 700.0]
    assert result["ratios"] == pytest.approx(
        {
            "words": 10.0,
            "seconds": 8.0,
            "rss_peak_mb": 1.2,
            # The small run grew 0.5 MB: growth is measured against at least 1 MB.
            "rss_growth_mb": 100.0,
            "rss_pipeline_mb": 90.0,
        }
    )


def test_child_command_passes_the_settings_on(tiny_bert, tmp_path):
    argv = [
        "--encoder",
        "x",
        "--threads",
        "2",
        "--cpu-precision",
        "bf16",
        "--model",
        "m",
        "--context",
        "0",
    ]
    cmd = child_command(parse_args(argv), tiny_bert, 500, tmp_path / "out.json")
    assert cmd[cmd.index("--_child") + 1] == "500"
    assert cmd[cmd.index("--encoder") + 1] == tiny_bert
    assert cmd[cmd.index("--output") + 1] == str(tmp_path / "out.json")
    assert (
        cmd[cmd.index("--threads") + 1] == "2" and cmd[cmd.index("--cpu-precision") + 1] == "bf16"
    )
    assert cmd[cmd.index("--model") + 1] == "m" and cmd[cmd.index("--context") + 1] == "0"
    assert "--window" not in cmd  # unset: the pipeline's own


def test_format_table():
    run = {"words": 1000, "seconds": 2.0, "words_per_s": 500.0, "rss_peak_mb": 300.0}
    result = {"paths": {"a": run, "b": {**run, "seconds": 4.0}}, "ratios": {"a/b": 2.0}}
    header, a, b, ratios = format_table(result).splitlines()
    assert header.split() == ["words", "seconds", "words/s", "peak", "RSS", "MB"]
    assert a.split() == ["a", "ctx_ner", "1,000", "2.000", "500", "300"]
    assert b.split()[:4] == ["b", "spacy-transformers", "+", "ner"]
    assert ratios == "ratios: a/b = 2.000"


@pytest.mark.slow
def test_scaling_runs_each_size_in_a_fresh_process(tiny_bert, tmp_path):
    output = tmp_path / "scaling.json"
    argv = ["--encoder", tiny_bert, "--random-weights", "--scaling", "200", "--threads", "1"]
    result = main(argv + ["--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(result))
    small, large = result["scaling"]["small"], result["scaling"]["large"]
    assert 200 <= small["words"] < large["words"]
    assert 8 < result["ratios"]["words"] < 12  # a factor 10 in words; more tokens than words
    for run in (small, large):
        assert run["seconds"] > 0 and run["rss_peak_mb"] >= run["rss_baseline_mb"] > 0
        assert run["rss_peak_mb_all"] == [run["rss_peak_mb"]]


@pytest.mark.slow
def test_scaling_with_a_trained_pipeline_counts_its_entities(
    tiny_bert, trained_nlp, saved, tmp_path
):
    argv = ["--encoder", tiny_bert, "--model", str(saved), "--scaling", "100"]
    result = main(argv + ["--scale-factor", "2", "--output", str(tmp_path / "s.json")])
    for key, n_words in (("small", 100), ("large", 200)):
        doc = trained_nlp(trained_nlp.make_doc(synthetic_text(n_words, seed=0)))
        assert result["scaling"][key]["entities"] == len(doc.ents) > 0
