"""The output folder without a cluster: part names and clean-up, the resume plan, the lock."""

import json
import socket
import time

import pytest

pytest.importorskip("ray.data")

import pyarrow as pa  # noqa: E402  (after the skip: pyarrow comes with ray[data])
import pyarrow.parquet as pq  # noqa: E402
from ray_util import write_txt  # noqa: E402

from spacy_ctxext.distributed import schema  # noqa: E402
from spacy_ctxext.distributed.output import resume  # noqa: E402
from spacy_ctxext.distributed.output.lock import OutputLock, OutputLockedError  # noqa: E402
from spacy_ctxext.distributed.output.store import OutputStore, part_name, write_part  # noqa: E402
from spacy_ctxext.distributed.reading.sources import resolve  # noqa: E402


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
        pa.table({"id": ["1"], "status": ["ok"]}), store.folders["manifest"] / "part-000000.parquet"
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
