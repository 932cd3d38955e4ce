"""spaCy's own command lines run a saved ctx_ner pipeline as any spaCy pipeline: ``spacy
apply``, ``spacy benchmark speed``, ``spacy evaluate`` and ``spacy debug data``, each in a
subprocess (``python -m spacy``, offline), each checked for what it produced.

``spacy package`` is tested in tests/test_package.py; ``spacy_ctxext.scoring.evaluate``
(the raw-text evaluate beside spaCy's) in tests/scoring/test_evaluate.py.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import spacy
import srsly
from spacy.scorer import get_ner_prf
from spacy.tokens import DocBin
from spacy.training import Example, offsets_to_biluo_tags
from spacy.training.iob_utils import biluo_to_iob
from util import GOLD, STORY, TRAIN_DATA, entities, make_nlp, write_gold

pytestmark = pytest.mark.slow  # a spaCy subprocess each (torch and transformers import)

TEXTS = [text for text, _ in TRAIN_DATA] + [text for text, _ in GOLD] + [STORY * 6, ""]


def spacy_cli(*args):
    """``python -m spacy ARGS`` offline; the finished process (stdout and stderr text)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "spacy", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def gold_data():
    """TRAIN_DATA, which the session's ctx_ner was overfit on, and GOLD, which it was
    not, as (text, IOB tags)."""
    nlp = spacy.blank("en")
    trained = [
        (text, biluo_to_iob(offsets_to_biluo_tags(nlp.make_doc(text), ents)))
        for text, ents in TRAIN_DATA
    ]
    return trained + list(GOLD)


@pytest.fixture(scope="module")
def data(saved):
    """The gold DocBin beside the saved pipeline."""
    return write_gold(spacy.blank("en"), saved.parent / "gold.spacy", gold=gold_data())


@pytest.fixture(scope="module")
def loaded(saved):
    return spacy.load(saved)


def test_apply_writes_the_entities_of_spacy_load(saved, loaded, tmp_path):
    source = tmp_path / "input.jsonl"
    srsly.write_jsonl(source, [{"text": text} for text in TEXTS])
    out = tmp_path / "out.spacy"
    run = spacy_cli("apply", saved, source, out, "--batch-size", 3)
    assert run.returncode == 0, run.stderr
    docs = list(DocBin().from_disk(out).get_docs(loaded.vocab))
    assert [doc.text for doc in docs] == TEXTS
    expected = [entities(doc) for doc in loaded.pipe(TEXTS)]
    assert [entities(doc) for doc in docs] == expected
    # The sentences the model was overfit on come back with their gold entities.
    assert expected[: len(TRAIN_DATA)] == [ents for _, ents in TRAIN_DATA]
    # The scored span group comes along, a score per entity.
    for doc in docs:
        assert len(doc.spans["ctx_ner"].attrs["scores"]) == len(doc.ents)


def test_benchmark_speed_prints_words_per_second(saved, data):
    run = spacy_cli("benchmark", "speed", saved, data, "--batches", 30, "--warmup", 1)
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    rate = re.search(r"Mean: ([\d.]+) words/s", output)
    assert rate and float(rate.group(1)) > 0, output


def test_evaluate_json_is_spacy_scorer_of_pipe(saved, loaded, data, tmp_path):
    """``spacy evaluate``'s ents_p/r/f are spaCy's entity scores of ``nlp.pipe`` on the
    gold texts (spacy_ctxext's own evaluate is tests/scoring/test_evaluate.py's)."""
    metrics = tmp_path / "metrics.json"
    run = spacy_cli("evaluate", saved, data, "--output", metrics)
    assert run.returncode == 0, run.stderr
    scores = json.loads(metrics.read_text())
    gold = list(DocBin().from_disk(data).get_docs(loaded.vocab))
    predicted = loaded.pipe(doc.text for doc in gold)
    expected = get_ner_prf([Example(pred, ref) for pred, ref in zip(predicted, gold)])
    for key in ("ents_p", "ents_r", "ents_f"):
        assert scores[key] == pytest.approx(expected[key]), key
    assert scores["ents_per_type"].keys() == expected["ents_per_type"].keys()
    for label, prf in expected["ents_per_type"].items():
        assert scores["ents_per_type"][label] == pytest.approx(prf), label
    # The overfit sentences are found: some but not all of the gold (GOLD is unseen).
    assert 0 < scores["ents_r"] < 1


def test_debug_data_on_a_ctx_ner_config(tiny_bert, tmp_path):
    """``spacy debug data`` initializes the ctx_ner pipeline on the corpus and finds no
    error (under 100 training docs is one: TRAIN_DATA's 3 are repeated). Its NER section
    is keyed on the built-in ``ner`` factory, so for ctx_ner it reports the pipeline and
    the corpus, not the entity labels."""
    config = tmp_path / "config.cfg"
    make_nlp(tiny_bert, window=32, context=4).config.to_disk(config)
    n_train = 34 * len(TRAIN_DATA)
    gold = gold_data()[: len(TRAIN_DATA)] * 34
    train = write_gold(spacy.blank("en"), tmp_path / "train.spacy", gold=gold)
    dev = write_gold(spacy.blank("en"), tmp_path / "dev.spacy")  # GOLD
    run = spacy_cli("debug", "data", config, "--paths.train", train, "--paths.dev", dev)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Pipeline can be initialized with data" in output
    assert "Training pipeline: ctx_ner" in output
    assert f"{n_train} training docs" in output
    assert f"{len(GOLD)} evaluation docs" in output
    assert "No overlap between training and evaluation data" in output
    assert f"Low number of examples to train a new pipeline ({n_train})" in output  # a warning
    assert "Named Entity Recognition" not in output
