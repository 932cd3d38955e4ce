"""spacy_ctxext.distributed on a local Ray (2 CPUs) with a tiny offline ctx_ner.

Each run starts fresh actors that import spaCy and torch and load the pipeline (~10 s on
this machine), so there are two Ray runs: one shared by the equality, failing-doc,
killed-actor and DocBin tests, and the resume test's.
"""

import json
import shutil
import textwrap

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import pyarrow as pa  # noqa: E402  (after the skip: pyarrow comes with ray[data])
import pyarrow.parquet as pq  # noqa: E402
import spacy  # noqa: E402
from spacy.tokens import DocBin  # noqa: E402
from spacy.training import Example  # noqa: E402
from util import TRAIN_DATA, make_nlp  # noqa: E402

from spacy_ctxext.distributed import compat  # noqa: E402
from spacy_ctxext.distributed.cli import main  # noqa: E402
from spacy_ctxext.distributed.inputs import read_corpus  # noqa: E402
from spacy_ctxext.distributed.run import RunConfig, annotate_corpus  # noqa: E402
from spacy_ctxext.distributed.store import OutputStore  # noqa: E402

# Registered in the test process and, through RunConfig.code, in every actor.
CODE = textwrap.dedent(
    '''
    import os
    from pathlib import Path

    from spacy.language import Language


    @Language.factory("test_fail_on_marker")
    def make_fail(nlp, name):
        def fail(doc):
            if "FAILME" in doc.text:
                raise ValueError("marked to fail")
            return doc

        return fail


    @Language.factory("test_die_once", default_config={"marker": ""})
    def make_die(nlp, name, marker):
        """Kill the actor's process on the first KILLME doc; the marker file lets the retry pass."""
        def die(doc):
            if "KILLME" in doc.text and not Path(marker).exists():
                Path(marker).touch()
                os._exit(1)
            return doc

        return die
    '''
)
SENTENCES = [text for text, _ in TRAIN_DATA]


def corpus_texts(n=12):
    """Docs of 1-6 training sentences, so batches mix lengths."""
    return {
        f"doc{i}": " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 6))
        for i in range(n)
    }


def write_jsonl(path, texts, extra=None):
    rows = [
        {"id": doc_id, "text": text, "meta": {"n": i}}
        for i, (doc_id, text) in enumerate(texts.items())
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows + (extra or [])) + "\n", encoding="utf8")
    return path


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def code_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("code") / "components.py"
    path.write_text(CODE, encoding="utf8")
    spacy.util.import_file("ctxext_test_components", str(path))
    return str(path)


@pytest.fixture(scope="module")
def model_dir(tiny_bert, code_file, tmp_path_factory):
    """A briefly trained ctx_ner + the two test components, saved to disk."""
    folder = tmp_path_factory.mktemp("distributed")
    nlp = make_nlp(tiny_bert)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN_DATA]
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 1e-3
    for _ in range(40):
        nlp.update(examples, sgd=optimizer)
    nlp.add_pipe("test_fail_on_marker")
    nlp.add_pipe("test_die_once", config={"marker": str(folder / "killed")})
    nlp.to_disk(folder / "model")
    return folder / "model"


def config(code_file, **overrides):
    settings = {
        "workers": 2,
        "batch_size": 3,
        "shard_docs": 4,
        "code": code_file,
        "progress": False,
    }
    return RunConfig(**{**settings, **overrides})


def read_output(out):
    entities = pq.read_table(out / "entities").to_pylist()
    manifest = {row["id"]: row for row in pq.read_table(out / "manifest").to_pylist()}
    return entities, manifest


def by_doc(entity_rows):
    found = {}
    for row in entity_rows:
        found.setdefault(row["id"], []).append((row["start_char"], row["end_char"], row["label"]))
    return {doc_id: sorted(ents) for doc_id, ents in found.items()}


def expected_entities(model_dir, texts):
    nlp = spacy.load(model_dir)
    docs = nlp.pipe(texts.values())
    found = {
        i: sorted((e.start_char, e.end_char, e.label_) for e in d.ents) for i, d in zip(texts, docs)
    }
    return {doc_id: ents for doc_id, ents in found.items() if ents}


@pytest.fixture(scope="module")
def shared_run(local_ray, model_dir, code_file, tmp_path_factory):
    """One run over 14 docs on 2 actors, with DocBin shards: doc "bad" raises in the
    pipeline, and the first attempt at "doc5" kills its actor's process."""
    folder = tmp_path_factory.mktemp("shared_run")
    texts = corpus_texts()
    texts["doc5"] = "KILLME " + texts["doc5"]
    bad = {"id": "bad", "text": "FAILME " + SENTENCES[0]}
    jsonl = write_jsonl(folder / "in.jsonl", texts, extra=[bad])
    summary = annotate_corpus(model_dir, jsonl, folder / "out", config(code_file, docbin=True))
    # Only now: the reference pipeline would kill this process before the marker exists.
    return texts, folder / "out", summary, expected_entities(model_dir, texts)


def test_entities_equal_nlp_pipe(shared_run):
    texts, out, summary, expected = shared_run
    entities, manifest = read_output(out)
    assert expected, "the tiny model should find some entities"
    assert by_doc(entities) == expected
    assert all(row["score"] is not None and 0 <= row["score"] <= 1 for row in entities)
    assert all(
        row["text"] == texts[row["id"]][row["start_char"] : row["end_char"]] for row in entities
    )
    assert summary.entities == len(entities)
    n_expected = {i: len(expected.get(i, [])) for i in texts}
    assert {i: manifest[i]["n_entities"] for i in texts} == n_expected


def test_failing_doc_is_reported_and_the_rest_written(shared_run):
    texts, out, summary, _ = shared_run
    _, manifest = read_output(out)
    assert sorted(manifest) == sorted([*texts, "bad"])
    assert manifest["bad"]["status"] == "error" and "marked to fail" in manifest["bad"]["error"]
    assert manifest["bad"]["n_tokens"] is None
    assert all(manifest[i]["status"] == "ok" and manifest[i]["error"] is None for i in texts)
    assert json.loads(manifest["doc3"]["meta"]) == {"n": 3}
    assert summary.docs == 13 and summary.failed == 1 and "bad" in summary.errors
    assert summary.words == sum(manifest[i]["n_tokens"] for i in texts) > 0
    assert json.loads((out / "summary.json").read_text())["failed"] == 1


def test_killed_actor_loses_no_doc_and_writes_none_twice(shared_run, model_dir):
    texts, out, summary, expected = shared_run
    assert (model_dir.parent / "killed").exists(), "the actor was never killed"
    ids = pq.read_table(out / "manifest").column("id").to_pylist()
    assert sorted(ids) == sorted([*texts, "bad"])  # each doc exactly once
    assert summary.duplicates_dropped == 0
    entities, _ = read_output(out)
    assert by_doc(entities)["doc5"] == expected["doc5"]  # by_doc keeps duplicates: none


def test_docbin_shards_hold_the_annotated_docs(shared_run):
    texts, out, _, expected = shared_run
    vocab = spacy.blank("en").vocab
    parts = sorted((out / "docs").iterdir())
    docs = [d for p in parts for d in DocBin().from_disk(p).get_docs(vocab)]
    assert sorted(d.user_data["id"] for d in docs) == sorted(texts)
    from_docs = {
        d.user_data["id"]: [(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs
    }
    assert {i: sorted(e) for i, e in from_docs.items() if e} == expected


def test_resume_skips_done_docs(shared_run, model_dir, code_file, tmp_path):
    """The shared run's output plus 4 new docs, through the CLI; a part whose manifest was
    never written (the driver died) is removed and its docs are not skipped."""
    texts, shared_out, _, _ = shared_run
    out = tmp_path / "out"
    shutil.copytree(shared_out, out)
    orphan = out / "entities" / "part-000099.parquet"
    pq.write_table(pq.read_table(out / "entities" / "part-000000.parquet"), orphan)
    more = {**texts, **{f"new{i}": SENTENCES[i % 3] for i in range(4)}}
    jsonl = write_jsonl(tmp_path / "all.jsonl", more)
    args = [str(model_dir), str(jsonl), str(out), "--batch-size", "2", "--code", code_file]
    summary = main([*args, "--workers", "1", "--quiet"])
    assert summary.skipped == len(texts) and summary.docs == 4 and not orphan.exists()
    ids = pq.read_table(out / "manifest").column("id").to_pylist()
    assert sorted(ids) == sorted([*more, "bad"])
    entities, _ = read_output(out)
    assert by_doc(entities) == expected_entities(model_dir, more)
    summary = annotate_corpus(model_dir, jsonl, out, config(code_file))
    assert summary.docs == 0 and summary.skipped == len(more)


def test_parquet_input_and_unique_ids(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["a b", "c"], "meta": [{"k": 1}, None]}), path)
    table = read_corpus(path)
    assert table.column("id").to_pylist() == ["1", "2"]
    assert table.column("meta").to_pylist() == ['{"k": 1}', None]
    pq.write_table(pa.table({"id": [1, 1], "text": ["a", "b"]}), path)
    with pytest.raises(ValueError, match="duplicate ids"):
        read_corpus(path)


def test_store_drops_rows_already_written(tmp_path):
    store = OutputStore(tmp_path)
    store.recover()
    from spacy_ctxext.distributed import schema

    row = {"id": "x", "n_chars": 1, "n_tokens": 1, "n_entities": 0, "status": "ok", "entities": []}
    results = pa.Table.from_pylist([row], schema=schema.RESULT)
    assert store.write(results).num_rows == 1
    assert store.write(results).num_rows == 0 and store.duplicates == 1
    assert OutputStore(tmp_path).recover() == {"x"}


@pytest.mark.parametrize(
    "version,key",
    [
        ("2.9.3", "concurrency"),
        ("2.50.1", "concurrency"),
        ("2.51.0", "compute"),
        ("2.60.0", "compute"),
    ],
)
def test_actor_pool_keyword_by_ray_version(version, key):
    assert list(compat.pool_kwargs(2, version)) == [key]
    assert compat.retry_kwargs(3, version) == {"max_restarts": -1, "max_task_retries": 3}
    assert compat.retry_kwargs(3, "2.64.0") == {}
