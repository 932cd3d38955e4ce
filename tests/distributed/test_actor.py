"""The actor and the driver's Ray start, without a cluster."""

import pytest

pytest.importorskip("ray.data")

import pyarrow.parquet as pq  # noqa: E402  (after the skip: pyarrow comes with ray[data])
from ray_util import binary_files, corpus_texts, parse_kwargs, write_jsonl  # noqa: E402

from spacy_ctxext.distributed import schema  # noqa: E402
from spacy_ctxext.distributed.actor import Annotator  # noqa: E402
from spacy_ctxext.distributed.config import RunConfig  # noqa: E402
from spacy_ctxext.distributed.output.store import OutputStore, part_name  # noqa: E402
from spacy_ctxext.distributed.progress import Summary  # noqa: E402
from spacy_ctxext.distributed.reading.parse import parse_files  # noqa: E402
from spacy_ctxext.distributed.run import SMALL_RESULT_BYTES, _ensure_ray  # noqa: E402


def test_the_actor_writes_its_batch_and_returns_the_manifest(model_dir, code_file, tmp_path):
    """Annotator without Ray: a parsed file in, a committed part out, its rows returned."""
    texts = {**corpus_texts(3), "bad": "FAILME Mary told Peter ."}
    data = write_jsonl(tmp_path / "f.jsonl", texts).read_bytes()
    (batch,) = parse_files(binary_files({"f.jsonl": data}), **parse_kwargs())
    out = tmp_path / "out"
    store = OutputStore(out, docbin=True)
    config = RunConfig(code=code_file, docbin=True)
    annotator = Annotator(str(model_dir), output=str(out), run_id="r", config=config)
    manifest = annotator(batch)
    assert manifest.schema == schema.MANIFEST
    assert manifest.column("status").to_pylist() == ["ok", "ok", "ok", "error"]
    assert set(manifest.column("file_docs").to_pylist()) == {4}
    name = part_name("r", list(texts))
    assert store.part_names("manifest") == store.part_names("entities") == [name]
    assert store.part_names("docs") == [name]
    assert pq.read_table(store.folders["manifest"]).equals(manifest)


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
    monkeypatch.setenv("RAY_max_direct_call_object_size", "")  # undone after the test
    monkeypatch.delenv("RAY_max_direct_call_object_size")
    fake = _FakeRay()
    assert _ensure_ray(fake, RunConfig(), Summary()) is True
    assert fake.init_env == str(SMALL_RESULT_BYTES)
    monkeypatch.setenv("RAY_max_direct_call_object_size", "5000")  # the user's own wins
    _ensure_ray(fake, RunConfig(), Summary())
    assert fake.init_env == "5000"
