"""The corpus as a Ray Data dataset, read on the workers; the input check before a run.

Files are read with ``ray.data.read_binary_files`` (any pyarrow filesystem: local, S3,
GCS, HDFS) and parsed by the read tasks (``parse``), streamed: the driver holds the file
list, never the texts. Before any model work, ``check_input`` reads every file still to
do once to validate it (bad JSON, a missing "text", non-UTF-8: the file and line in the
error), and groups its ids with the output manifest's on the workers (Ray Data
``groupby("id")``): the driver receives counts, a few repeated ids, and the ids of these
files already in the output (``output.resume``), never all the ids.

Imported only once a run starts (it imports Ray).
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow.fs import LocalFileSystem
from ray.data.aggregate import Max, Sum

from .. import compat
from .parse import parse_files, parse_ids
from .sources import InputError, Sources

# Read tasks ask for no CPU: a fractional share would leave none for them once the actors
# hold every CPU (on one machine, ``--workers`` = its cores) and the run would stall; their
# number is capped instead (``read_concurrency``), as parsing is light next to annotation.
READ_CPUS = 0
# A read task gives a file's docs as one block by default (Ray's 128 MiB target), and an
# actor pool hands out whole blocks: a corpus in one file kept every actor but one idle.
# Blocks of this size (a few dozen long docs) balance the actors and are still big enough
# to live in the object store (results under 100 KiB go to the driver; see run.py).
DOC_BLOCK_BYTES = 256 * 1024


def read_concurrency(workers: int) -> int:
    """Files read at once: enough to keep ``workers`` actors fed."""
    return max(2, workers)


# The id check's rows: an input doc (n_in 1, from ``source``) or a manifest row (n_done 1,
# from ``done_source``), grouped by id.
IDS = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("done_source", pa.string()),
        ("n_in", pa.int64()),
        ("n_done", pa.int64()),
    ]
)
STATS = pa.schema(
    [
        ("docs", pa.int64()),
        ("duplicate_ids", pa.int64()),
        ("duplicate_docs", pa.int64()),
        ("examples", pa.list_(pa.string())),
        ("output_duplicates", pa.int64()),
        ("done_sources", pa.list_(pa.string())),
        ("done_ids", pa.list_(pa.string())),
        ("moved", pa.int64()),
        ("moved_examples", pa.list_(pa.string())),
    ]
)


def _read(ray: Any, sources: Sources, parse: Any, concurrency: int, **kwargs: Any) -> Any:
    """``read_binary_files`` and ``parse`` in one task per file (the two fuse: same pool
    size, same resources)."""
    files = ray.data.read_binary_files(
        sources.paths,
        include_paths=True,
        filesystem=sources.filesystem,
        num_cpus=READ_CPUS,
        concurrency=concurrency,
    )
    return files.map_batches(
        parse,
        batch_size=1,  # one file a call: a call's output is one file's docs
        batch_format="pyarrow",
        fn_kwargs={"base": sources.base, "single": sources.single, **kwargs},
        num_cpus=READ_CPUS,
        **compat.task_pool_kwargs(concurrency, ray.__version__),
    )


def read_docs(
    ray: Any, sources: Sources, done: Optional[Dict[str, Set[str]]] = None, concurrency: int = 2
) -> Any:
    """The lazy dataset of ``schema.INPUT`` rows, less the ``done`` ids of each source, in
    blocks of about ``DOC_BLOCK_BYTES``."""
    docs = _read(ray, sources, parse_files, concurrency, done=done or None)
    docs.context.target_max_block_size = DOC_BLOCK_BYTES
    return docs


@dataclass
class Check:
    input_docs: int  # docs in the files checked
    done: Dict[str, Set[str]]  # source -> ids already in the output
    output_duplicates: int  # ids in the manifest more than once (should be 0)
    moved: int  # of those done, ids the output has from another input file
    moved_examples: List[str]


def check_input(
    ray: Any, sources: Sources, manifest: Sequence[str] = (), concurrency: int = 2
) -> Check:
    """Read and validate every file of ``sources``; ``InputError`` if an id is in more
    than one doc. Ids also in the ``manifest`` parts are returned per source: done."""
    ids = _read(ray, sources, parse_ids, concurrency)
    if len(sources.paths) == 1 and not manifest:  # the read task checked its ids itself
        return Check(int(ids.count()), {}, 0, 0, [])
    if manifest:
        # Manifest parts are small: read as bytes like the input (Ray's read_parquet path
        # resolution imports fsspec's HTTP support, which fails in some installs).
        parts = ray.data.read_binary_files(
            list(manifest), filesystem=LocalFileSystem(), num_cpus=READ_CPUS
        )
        ids = ids.union(parts.map_batches(_as_done, batch_format="pyarrow", num_cpus=READ_CPUS))
    # One partition a file, at most 200 (Ray's default): the id check's tasks stay few on
    # a small input and each holds a bounded share of the ids on a large one.
    partitions = max(2, min(200, len(sources.paths)))
    grouped = ids.groupby("id", num_partitions=partitions).aggregate(
        Sum("n_in", alias_name="n_in"),
        Sum("n_done", alias_name="n_done"),
        Max("source", alias_name="source", zero_factory=lambda: ""),
        Max("done_source", alias_name="done_source", zero_factory=lambda: ""),
    )
    stats = grouped.map_batches(_id_stats, batch_format="pyarrow", batch_size=None)
    rows: List[Dict[str, Any]] = stats.take_all()  # one small row per block
    _raise_on_duplicates(rows, sources)
    found: Dict[str, Set[str]] = {}
    for row in rows:
        for source, doc_id in zip(row["done_sources"], row["done_ids"]):
            found.setdefault(source, set()).add(doc_id)
    return Check(
        input_docs=sum(r["docs"] for r in rows),
        done=found,
        output_duplicates=sum(r["output_duplicates"] for r in rows),
        moved=sum(r["moved"] for r in rows),
        moved_examples=[e for r in rows for e in r["moved_examples"]][:3],
    )


def _as_done(files: pa.Table) -> pa.Table:
    """Manifest parts' rows as rows of the id check: in the output, from ``done_source``."""
    table = pa.concat_tables(
        pq.read_table(pa.BufferReader(data), columns=["id", "source"])
        for data in files.column("bytes").to_pylist()
    )
    n = table.num_rows
    return pa.table(
        {
            "id": table.column("id"),
            "source": pa.nulls(n, pa.string()),
            "done_source": table.column("source"),
            "n_in": pa.array([0] * n, pa.int64()),
            "n_done": pa.array([1] * n, pa.int64()),
        },
        schema=IDS,
    )


def _id_stats(grouped: pa.Table) -> pa.Table:
    """A block of grouped ids as one row: docs, repeated ids and a few of them, the ids
    already done (and how many of those the output has from another file)."""
    n_in, n_done = grouped.column("n_in"), grouped.column("n_done")
    repeated = grouped.filter(pc.greater(n_in, 1))
    done = grouped.filter(pc.and_(pc.greater(n_in, 0), pc.greater(n_done, 0)))
    moved = done.filter(pc.not_equal(done.column("source"), done.column("done_source")))
    moved_examples = [
        f"{doc_id!r} from {before}, now in {now}"
        for doc_id, before, now in zip(
            *(moved.column(c).to_pylist()[:3] for c in ("id", "done_source", "source"))
        )
    ]
    return pa.table(
        {
            "docs": [pc.sum(n_in).as_py() or 0],
            "duplicate_ids": [repeated.num_rows],
            "duplicate_docs": [(pc.sum(repeated.column("n_in")).as_py() or 0) - repeated.num_rows],
            "examples": [repeated.column("id").to_pylist()[:5]],
            "output_duplicates": [pc.sum(pc.greater(n_done, 1)).as_py() or 0],
            "done_sources": [done.column("source").to_pylist()],
            "done_ids": [done.column("id").to_pylist()],
            "moved": [moved.num_rows],
            "moved_examples": [moved_examples],
        },
        schema=STATS,
    )


def _raise_on_duplicates(rows: List[Dict[str, Any]], sources: Sources) -> None:
    dupes = sum(r["duplicate_ids"] for r in rows)
    if dupes:
        examples = [e for r in rows for e in r["examples"]][:5]
        extra = sum(r["duplicate_docs"] for r in rows)
        raise InputError(
            f"{sources.base}: {dupes} duplicate ids, each in more than one doc ({extra} docs "
            f"too many), e.g. {examples}: ids must be unique across the input's files (resume "
            "and the exactly-once check key on them). Give each doc its own id, or leave ids "
            "out for ids made of the file path and line or row number."
        )


def find_input_error(err: BaseException) -> Optional[InputError]:
    """The ``InputError`` a read task raised, found in the Ray exceptions that wrap it (Ray
    re-raises it as a subclass whose message is the worker's whole traceback)."""
    seen: Set[int] = set()
    todo: List[Optional[BaseException]] = [err]
    wrapped: Optional[InputError] = None
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if type(current) is InputError:
            return current
        if isinstance(current, InputError) and wrapped is None:
            wrapped = current
        todo += [current.__cause__, current.__context__, getattr(current, "cause", None)]
    return wrapped
