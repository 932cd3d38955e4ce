"""The Ray path's pieces without a cluster: which files an input names, how a file becomes
docs and ids, part names and clean-up, the resume plan, the output lock."""

import json
import socket
import time

import pytest

pytest.importorskip("ray.data")

import pyarrow as pa  # noqa: E402  (after the skip: pyarrow comes with ray[data])
import pyarrow.parquet as pq  # noqa: E402
from ray_util import corpus_texts, write_jsonl, write_parquet, write_txt  # noqa: E402

from spacy_ctxext.distributed import resume, schema  # noqa: E402
from spacy_ctxext.distributed.lock import OutputLock, OutputLockedError  # noqa: E402
from spacy_ctxext.distributed.parse import parse_file, parse_files  # noqa: E402
from spacy_ctxext.distributed.sources import InputError, match_parts, resolve  # noqa: E402
from spacy_ctxext.distributed.store import OutputStore, part_name, write_part  # noqa: E402


@pytest.fixture
def shards(tmp_path):
    """Two JSONL files without ids, a Parquet and two .txt in subfolders."""
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    write_jsonl(root / "a" / "one.jsonl", corpus_texts(3), ids=False)
    write_jsonl(root / "a" / "two.jsonl", corpus_texts(2), ids=False)
    write_parquet(root / "three.parquet", corpus_texts(2), ids=False)
    write_txt(root / "b", corpus_texts(2, prefix="t"))
    (root / "a" / "notes.md").write_text("not a doc")
    return root


def test_file_folder_and_glob_name_the_files(shards):
    single = resolve(str(shards / "a" / "one.jsonl"))
    assert single.single and single.sources == ["one.jsonl"]
    folder = resolve(str(shards / "a"))
    assert not folder.single and folder.sources == ["one.jsonl", "two.jsonl"]
    assert resolve(str(shards / "**" / "*.txt")).sources == ["b/t0.txt", "b/t1.txt"]
    assert resolve(str(shards / "*" / "*.jsonl")).sources == ["a/one.jsonl", "a/two.jsonl"]
    every = resolve(str(shards / "**"))
    assert len(every.sources) == 5 and every.total_bytes == sum(every.sizes) > 0
    assert resolve(f"file://{shards}/*.parquet").sources == ["three.parquet"]


def test_bad_inputs_say_what_is_wrong(shards, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        resolve(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match="matches no"):
        resolve(str(shards / "*.csv"))
    (shards / "b" / "x.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(InputError, match=r"several kinds \(1 \.jsonl, 2 \.txt\)"):
        resolve(str(shards / "b"))
    with pytest.raises(InputError, match="expected a .jsonl"):
        resolve(str(shards / "a" / "notes.md"))


def test_glob_components():
    assert match_parts(("a", "b", "c.txt"), ("**", "*.txt"))
    assert match_parts(("c.txt",), ("**", "*.txt"))
    assert not match_parts(("a", "c.txt"), ("*.txt",))
    assert match_parts(("a", "c.txt"), ("?", "c.*"))


def test_default_ids_by_input_shape():
    data = b'{"text": "a"}\n\n{"text": "b", "id": 7}\n{"text": "c", "meta": {"k": 1}}\n'
    assert parse_file(data, "x.jsonl", single=True)[0] == ["1", "7", "4"]  # line numbers
    ids, texts, metas = parse_file(data, "s/x.jsonl", single=False)
    assert ids == ["s/x.jsonl:1", "7", "s/x.jsonl:4"] and texts == ["a", "b", "c"]
    assert metas == [None, None, '{"k": 1}']
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"text": ["p", "q"], "meta": [{"k": 1}, None]}), sink)
    parquet = sink.getvalue().to_pybytes()
    assert parse_file(parquet, "y.parquet", single=True)[0] == ["1", "2"]
    assert parse_file(parquet, "y.parquet", single=False)[0] == ["y.parquet:1", "y.parquet:2"]
    assert parse_file("é\r\n".encode(), "d/z.txt", single=False) == (["d/z.txt"], ["é\r\n"], [None])


DUPLICATED = b'{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n'


def test_bad_files_name_file_and_line():
    with pytest.raises(InputError, match=r"x.jsonl: line 2: invalid JSON"):
        parse_file(b'{"text": "a"}\n{oops\n', "x.jsonl", single=True)
    with pytest.raises(InputError, match=r"x.jsonl: 1 duplicate ids"):
        list(parse_files(_files({"x.jsonl": DUPLICATED}), **_kw()))
    with pytest.raises(InputError, match="not UTF-8"):
        parse_file(b"\xff", "z.txt", single=False)
    with pytest.raises(InputError, match="not a readable Parquet"):
        parse_file(b"garbage", "p.parquet", single=False)


def _files(contents, base="/in"):
    return pa.table(
        {"bytes": list(contents.values()), "path": [f"{base}/{name}" for name in contents]}
    )


def _kw(**kw):
    return {"base": "/in", "single": False, **kw}


def test_parse_leaves_out_done_ids_and_counts_the_file():
    data = b'{"text": "a"}\n{"text": "b"}\n{"text": "c"}\n'
    (table,) = parse_files(_files({"f.jsonl": data}), **_kw(done={"f.jsonl": {"f.jsonl:2"}}))
    assert table.schema == schema.INPUT
    assert table.column("id").to_pylist() == ["f.jsonl:1", "f.jsonl:3"]
    assert set(table.column("file_docs").to_pylist()) == {3}
    assert set(table.column("file_bytes").to_pylist()) == {len(data)}


def _results(ids, source="f.jsonl", file_docs=3, file_bytes=10, status="ok"):
    rows = [
        {
            "id": i,
            "n_chars": 1,
            "n_tokens": 1 if status == "ok" else None,
            "n_entities": 0,
            "status": status,
            "error": None if status == "ok" else "E",
            "source": source,
            "file_docs": file_docs,
            "file_bytes": file_bytes,
            "entities": [],
        }
        for i in ids
    ]
    return pa.Table.from_pylist(rows, schema=schema.RESULT)


def test_a_retried_batch_rewrites_its_own_part(tmp_path):
    store = OutputStore(tmp_path)
    write_part(tmp_path, "r1", _results(["a", "b"]), [], docbin=False)
    write_part(tmp_path, "r1", _results(["a", "b"]), [], docbin=False)
    assert store.part_names("manifest") == [part_name("r1", ["a", "b"])]
    assert part_name("r2", ["a", "b"]) != part_name("r1", ["a", "b"]) != part_name("r1", ["a"])
    orphan = tmp_path / "entities" / "part-dead-beef.parquet"
    orphan.write_bytes(
        (tmp_path / "entities" / f"{part_name('r1', ['a', 'b'])}.parquet").read_bytes()
    )
    (tmp_path / "manifest" / ".part-x.parquet.tmp").write_bytes(b"partial")
    assert store.recover() == 1 and not orphan.exists()
    assert [p.name for p in (tmp_path / "manifest").iterdir()] == [
        f"{part_name('r1', ['a', 'b'])}.parquet"
    ]


def test_plan_skips_complete_files_and_retries_failed(tmp_path):
    sources = resolve(str(write_txt(tmp_path / "in", {"f": "x" * 10, "g": "y" * 10, "h": "z"})))
    store = OutputStore(tmp_path / "out")
    for source in ("f.txt", "g.txt"):
        write_part(store.root, "r", _results([source], source, 1, 10), [], docbin=False)
    write_part(store.root, "r", _results(["h.txt"], "h.txt", 1, 5), [], docbin=False)  # resized
    plan = resume.plan(store, sources)
    assert plan.complete == {"f.txt", "g.txt"} and plan.todo.sources == ["h.txt"]
    assert plan.skipped == 2 and plan.files_skipped == 2
    write_part(store.root, "r2", _results(["g.txt"], "g.txt", 1, 10, "error"), [], docbin=False)
    store.remove_part(part_name("r", ["g.txt"]))
    assert resume.plan(store, sources).complete == {"f.txt", "g.txt"}  # failed counts as done
    plan = resume.plan(store, sources, retry_failed=True)
    assert plan.retried == 1 and plan.todo.sources == ["g.txt", "h.txt"]
    assert store.part_names("manifest") == sorted([part_name("r", [s]) for s in ("f.txt", "h.txt")])


def test_plan_refuses_an_output_of_the_previous_version(tmp_path):
    store = OutputStore(tmp_path / "out")
    pq.write_table(
        pa.table({"id": ["1"], "status": ["ok"]}), store.dirs["manifest"] / "part-000000.parquet"
    )
    with pytest.raises(ValueError, match="earlier version"):
        resume.plan(store, resolve(str(write_txt(tmp_path / "in", {"f": "x"}))))


def test_lock_refuses_a_second_run_and_takes_over_a_dead_one(tmp_path):
    with OutputLock(tmp_path, "run1") as lock:
        with pytest.raises(OutputLockedError, match=r"another run .* run run1.*delete .*\.lock"):
            OutputLock(tmp_path, "run2").acquire()
        assert json.loads(lock.path.read_text())["run_id"] == "run1"
    assert not (tmp_path / ".lock").exists()
    stale = {"host": "elsewhere", "pid": 1, "run_id": "old", "heartbeat": time.time() - 600}
    (tmp_path / ".lock").write_text(json.dumps(stale))
    with pytest.warns(UserWarning, match="no heartbeat for 600s"):
        with OutputLock(tmp_path, "run3", stale_after=120):
            pass
    dead = {"host": socket.gethostname(), "pid": 2**22 + 7, "run_id": "x", "heartbeat": time.time()}
    (tmp_path / ".lock").write_text(json.dumps(dead))
    with pytest.warns(UserWarning, match="has exited"):
        with OutputLock(tmp_path, "run4"):
            assert json.loads((tmp_path / ".lock").read_text())["run_id"] == "run4"


def test_the_actor_writes_its_batch_and_returns_the_manifest(model_dir, code_file, tmp_path):
    """Annotator without Ray: a parsed file in, a committed part out, its rows returned."""
    from spacy_ctxext.distributed.actor import Annotator

    texts = {**corpus_texts(3), "bad": "FAILME Mary told Peter ."}
    data = write_jsonl(tmp_path / "f.jsonl", texts).read_bytes()
    (batch,) = parse_files(_files({"f.jsonl": data}), **_kw())
    out = tmp_path / "out"
    store = OutputStore(out, docbin=True)
    annotator = Annotator(str(model_dir), output=str(out), run_id="r", code=code_file, docbin=True)
    manifest = annotator(batch)
    assert manifest.schema == schema.MANIFEST
    assert manifest.column("status").to_pylist() == ["ok", "ok", "ok", "error"]
    assert set(manifest.column("file_docs").to_pylist()) == {4}
    name = part_name("r", list(texts))
    assert store.part_names("manifest") == store.part_names("entities") == [name]
    assert store.part_names("docs") == [name]
    assert pq.read_table(store.dirs["manifest"]).equals(manifest)


class _FakeRay:
    """Records the environment ``ray.init`` would hand to the raylet and workers."""

    class data:
        class DataContext:
            @staticmethod
            def get_current():
                return type("Context", (), {})()

    def __init__(self):
        self.init_env = None

    def is_initialized(self):
        return False

    def init(self, address=None):
        import os

        self.init_env = os.environ.get("RAY_max_direct_call_object_size")


def test_a_started_ray_keeps_task_results_out_of_the_driver(monkeypatch):
    from spacy_ctxext.distributed.progress import Summary
    from spacy_ctxext.distributed.run import SMALL_RESULT_BYTES, RunConfig, _ensure_ray

    monkeypatch.setenv("RAY_max_direct_call_object_size", "")  # undone after the test
    monkeypatch.delenv("RAY_max_direct_call_object_size")
    fake = _FakeRay()
    assert _ensure_ray(fake, RunConfig(), Summary()) is True
    assert fake.init_env == str(SMALL_RESULT_BYTES)
    monkeypatch.setenv("RAY_max_direct_call_object_size", "5000")  # the user's own wins
    _ensure_ray(fake, RunConfig(), Summary())
    assert fake.init_env == "5000"
