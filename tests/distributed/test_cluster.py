"""spacy_ctxext.distributed on a real two-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: a head and a worker node, each its own raylet and object
store), driven by the CLI with ``--address`` as a user would on a cluster.

One cluster for the module (start ~10 s). The nodes start from this process's environment,
with this checkout first on PYTHONPATH, and the test pipeline's ``test_where`` component
records which node and which ``spacy_ctxext`` each actor ran: the tests assert both.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from ray_util import (  # noqa: E402
    by_doc,
    corpus_texts,
    expected_entities,
    read_output,
    write_jsonl,
)

import spacy_ctxext  # noqa: E402
from spacy_ctxext.distributed.cli import main  # noqa: E402
from spacy_ctxext.distributed.output.lock import OutputLockedError  # noqa: E402

REPO = Path(spacy_ctxext.__file__).resolve().parents[1]
# How long a wait for an event (a lock file, a busy worker node, free CPUs, a finished run)
# may last before the test fails instead of hanging: a bound on a hang, not a speed
# expectation. On two cores beside other jobs, actors took minutes to load their model.
PATIENCE = 900
# Ray Data names its usage poller thread so (ray/data/_internal/usage/poller.py).
USAGE_POLLER_THREAD = "data-usage-metrics-poller"


@pytest.fixture(scope="module")
def cluster():
    """A head with room for two actors (so a lost node's actor can restart there) and a
    worker node with room for one (read tasks ask for no CPU)."""
    from ray.cluster_utils import Cluster

    env = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env) if p)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()
    os.environ["PYTHONPATH"] = env


def corpus(folder, n_files=3, per_file=6, slow=False):
    """JSONL files without ids (ids are path:line); SLOWME docs sleep 1 s in an actor."""
    folder.mkdir(parents=True)
    texts = {}
    for f in range(n_files):
        part = corpus_texts(per_file, prefix=f"f{f}-")
        if slow:
            part = {k: "SLOWME " + v for k, v in part.items()}
        write_jsonl(folder / f"part-{f}.jsonl", part, ids=False)
        texts.update({f"part-{f}.jsonl:{i + 1}": t for i, t in enumerate(part.values())})
    return texts


def records(model_dir, since=0.0):
    """(node id, spacy_ctxext file) of each actor process that annotated a doc since."""
    found = []
    for path in (model_dir.parent / "procs").glob("*.json"):
        if path.stat().st_mtime >= since:
            record = json.loads(path.read_text())
            found.append((record["node"], record["package"]))
    return found


def cli_args(model_dir, code_file, folder, out, address, workers=2):
    return [
        str(model_dir),
        str(folder),
        str(out),
        "--address",
        address,
        "--workers",
        str(workers),
        "--batch-size",
        "2",
        "--code",
        code_file,
        "--quiet",
    ]


def test_cli_on_two_nodes_refuses_a_second_run(cluster, model_dir, code_file, tmp_path):
    """A CLI process on the cluster: entities as nlp.pipe's, each doc once, actors on both
    nodes importing this checkout; a second run on its output meanwhile is refused."""
    head, worker = cluster
    _wait_until_idle(head.address)
    texts = corpus(tmp_path / "in", slow=True)
    out = tmp_path / "out"
    args = cli_args(model_dir, code_file, tmp_path / "in", out, head.address)
    cmd = [sys.executable, "-m", "spacy_ctxext.distributed", *args]
    start = time.time()
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: (out / ".lock").exists() or first.poll() is not None, PATIENCE)
        with pytest.raises(OutputLockedError, match="is being written by another run"):
            main(args)
        output, _ = first.communicate(timeout=PATIENCE)
    finally:
        first.kill()
    assert first.returncode == 0, output
    assert f"{len(texts)} docs annotated (0 already done, 0 failed)" in output
    entities, manifest = read_output(out)
    assert sorted(manifest) == sorted(texts)
    assert by_doc(entities) == expected_entities(model_dir, texts)
    ran = records(model_dir, since=start)
    assert {node for node, _ in ran} == {head.head_node.node_id, worker.node_id}
    assert {Path(package).resolve() for _, package in ran} == {
        REPO / "spacy_ctxext" / "__init__.py"
    }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["docs"] == len(texts) and summary["duplicates"] == summary["missing"] == 0


def test_a_removed_node_loses_nothing_and_writes_nothing_twice(
    cluster, model_dir, code_file, tmp_path
):
    """The worker node is removed once it has committed a part and while its actor holds
    a batch: its actor restarts on the head, its batches are retried there."""
    head, worker = cluster
    _wait_until_idle(head.address)
    texts = corpus(tmp_path / "in", n_files=4, per_file=5, slow=True)
    out = tmp_path / "out"
    start = time.time()
    removed = threading.Event()

    def remove_when_working():
        def worker_busy():
            on_worker = [n for n, _ in records(model_dir, since=start) if n == worker.node_id]
            return on_worker and list((out / "manifest").glob("part-*.parquet"))

        if _wait_for(worker_busy, PATIENCE):
            head.remove_node(worker)
            removed.set()

    watcher = threading.Thread(target=remove_when_working, daemon=True)
    watcher.start()
    summary = main(cli_args(model_dir, code_file, tmp_path / "in", out, head.address))
    watcher.join(timeout=5)
    assert removed.is_set(), "the worker node was never removed mid-run"
    assert summary.docs == len(texts) and summary.failed == 0 and summary.skipped == 0
    assert summary.duplicates == summary.missing == 0
    entities, manifest = read_output(out)  # read_output asserts each id once
    assert sorted(manifest) == sorted(texts)
    assert by_doc(entities) == expected_entities(model_dir, texts)


def test_a_driver_on_the_cluster_leaves_no_usage_poller_thread(cluster):
    """A driver joining a cluster with usage stats on starts Ray Data's usage poller, a
    thread that outlives ray.shutdown and logs tracebacks for the rest of the session;
    tests/distributed/conftest.py turns usage stats off, since those tracebacks broke
    another test."""
    head, _ = cluster
    ray.init(address=head.address)
    try:
        ray.data.range(4).materialize()
    finally:
        ray.shutdown()
    assert USAGE_POLLER_THREAD not in {thread.name for thread in threading.enumerate()}


def _wait_until_idle(address, seconds=PATIENCE):
    """Wait until every CPU of the cluster is free. A run started a second after the earlier
    one's driver exited had both actors on the head and none on the worker node, most likely
    because the earlier actor on the worker still held its one CPU."""
    ray.init(address=address)
    try:
        idle = _wait_for(
            lambda: ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"],
            seconds,
        )
    finally:
        ray.shutdown()
    assert idle, f"the cluster's CPUs were not all free within {seconds} s"


def _wait_for(condition, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
