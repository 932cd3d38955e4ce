"""spacy_ctxext.distributed on a local Ray (2 CPUs) with a tiny offline ctx_ner.

Each run starts fresh actors that import spaCy and torch and load the pipeline (~10 s on
this machine), so the runs are few: one shared by the equality, failing-doc, killed-actor
and DocBin tests, the resume test's, one over a folder of each input kind, and the
--retry-failed test's. The multi-node cluster is in test_cluster.py.
"""

import json
import shutil
import warnings

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import pyarrow.parquet as pq  # noqa: E402  (after the skip: pyarrow comes with ray[data])
import spacy  # noqa: E402
from ray_util import (  # noqa: E402
    SENTENCES,
    by_doc,
    config,
    corpus_texts,
    expected_entities,
    read_output,
    write_jsonl,
    write_parquet,
    write_txt,
)
from spacy.tokens import DocBin  # noqa: E402

from spacy_ctxext.distributed import compat  # noqa: E402
from spacy_ctxext.distributed.cli import main  # noqa: E402
from spacy_ctxext.distributed.output.lock import OutputLock, OutputLockedError  # noqa: E402
from spacy_ctxext.distributed.reading.inputs import read_docs  # noqa: E402
from spacy_ctxext.distributed.reading.sources import InputError, resolve  # noqa: E402
from spacy_ctxext.distributed.run import annotate_corpus  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


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
    assert summary.duplicates == 0
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
    """The shared run's output plus 4 new docs, in another file, through the CLI: docs are
    skipped by id whatever file they were in; a part whose manifest was never written (its
    writer died) is removed and its docs are not skipped."""
    texts, shared_out, _, _ = shared_run
    out = tmp_path / "out"
    shutil.copytree(shared_out, out)
    first = sorted((out / "entities").iterdir())[0]
    orphan = out / "entities" / "part-deadbeef-0000000000000000.parquet"
    shutil.copy(first, orphan)
    more = {**texts, **{f"new{i}": SENTENCES[i % 3] for i in range(4)}}
    jsonl = write_jsonl(tmp_path / "all.jsonl", more)
    args = [str(model_dir), str(jsonl), str(out), "--batch-size", "2", "--code", code_file]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = main([*args, "--workers", "1", "--quiet"])
    messages = [str(w.message) for w in caught]
    moved = "12 docs of the input are in the output under another input file, e.g. "
    assert any(m.startswith(moved) and "from in.jsonl, now in all.jsonl" in m for m in messages)
    assert summary.skipped == len(texts) and summary.docs == 4 and not orphan.exists()
    assert summary.duplicates == summary.missing == 0
    entities, manifest = read_output(out)
    assert sorted(manifest) == sorted([*more, "bad"])
    assert by_doc(entities) == expected_entities(model_dir, more)
    summary = annotate_corpus(model_dir, jsonl, out, config(code_file))
    assert summary.docs == 0 and summary.skipped == len(more)


def test_retry_failed_annotates_the_failed_doc_again(shared_run, model_dir, code_file, tmp_path):
    _, shared_out, _, _ = shared_run
    out = tmp_path / "out"
    shutil.copytree(shared_out, out)
    jsonl = shared_out.parent / "in.jsonl"
    again = annotate_corpus(model_dir, jsonl, out, config(code_file))
    assert again.docs == 0 and again.files_skipped == 1  # failed docs count as done
    healed = model_dir.parent / "healed"
    healed.touch()
    try:
        summary = annotate_corpus(model_dir, jsonl, out, config(code_file, retry_failed=True))
    finally:
        healed.unlink()
    assert summary.retried == 1 and summary.docs == 1 and summary.failed == 0
    assert summary.skipped == 12 and summary.duplicates == summary.missing == 0
    _, manifest = read_output(out)  # one row per doc
    assert manifest["bad"]["status"] == "ok" and len(manifest) == 13


def test_a_glob_over_files_of_each_kind(local_ray, model_dir, code_file, tmp_path):
    """JSONL and Parquet files with and without ids, and .txt files: ids from the path and
    line or row where a record has none, entities as nlp.pipe's."""
    root = tmp_path / "corpus"
    (root / "jsonl").mkdir(parents=True)
    (root / "parquet").mkdir()
    texts = {}
    for name, part in (("a", corpus_texts(5, "a")), ("b", corpus_texts(4, "b"))):
        write_jsonl(root / "jsonl" / f"{name}.jsonl", part, ids=False)
        texts.update({f"jsonl/{name}.jsonl:{i + 1}": t for i, t in enumerate(part.values())})
    write_parquet(root / "parquet" / "c.parquet", corpus_texts(4, "c"))
    texts.update(corpus_texts(4, "c"))
    write_parquet(root / "parquet" / "d.parquet", corpus_texts(3, "d"), ids=False)
    texts.update({f"parquet/d.parquet:{i + 1}": t for i, t in enumerate(corpus_texts(3).values())})
    write_txt(root / "txt", corpus_texts(3, "t"))
    texts.update({f"txt/t{i}.txt": t for i, t in enumerate(corpus_texts(3).values())})
    summary = annotate_corpus(model_dir, f"{root}/**/*", tmp_path / "out", config(code_file))
    assert summary.files == 7 and summary.input_docs == summary.docs == len(texts) == 19
    entities, manifest = read_output(tmp_path / "out")
    assert sorted(manifest) == sorted(texts)
    assert json.loads(manifest["jsonl/b.jsonl:2"]["meta"]) == {"n": 1}
    assert manifest["txt/t1.txt"]["source"] == "txt/t1.txt"
    assert by_doc(entities) == expected_entities(model_dir, texts)


def test_bad_input_fails_before_any_model_work(local_ray, model_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", {"x": "one", "y": "two"})
    write_jsonl(folder / "b.jsonl", {"y": "three", "x": "four", "z": "five"})
    with pytest.raises(InputError, match=r"2 duplicate ids, each in more than one doc \(2 docs"):
        annotate_corpus(model_dir, folder, tmp_path / "out", config(None))
    (folder / "b.jsonl").write_text('{"text": "ok", "id": "w"}\n{"text": 3}\n')
    with pytest.raises(InputError, match=r'^b.jsonl: line 2: expected an object with a "text"'):
        annotate_corpus(model_dir, folder, tmp_path / "out", config(None))
    assert not list((tmp_path / "out" / "manifest").iterdir())


def test_a_second_run_on_a_locked_output_is_refused(model_dir, tmp_path):
    jsonl = write_jsonl(tmp_path / "in.jsonl", {"x": "one"})
    with OutputLock(tmp_path / "out", "first"):
        with pytest.raises(OutputLockedError, match="is being written by another run"):
            main([str(model_dir), str(jsonl), str(tmp_path / "out"), "--quiet"])


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


def test_one_file_is_read_as_several_blocks(local_ray, tmp_path):
    """A read task gives one block per file and an actor pool hands out whole blocks: a
    corpus in one file must come in several blocks for a second actor to get any work."""
    texts = {f"d{i}": "word " * 4000 for i in range(40)}  # 20 KB each, 800 KB in all
    jsonl = write_jsonl(tmp_path / "one.jsonl", texts)
    docs = read_docs(local_ray, resolve(str(jsonl))).materialize()
    assert docs.num_blocks() >= 3
    assert sorted(row["id"] for row in docs.take_all()) == sorted(texts)
