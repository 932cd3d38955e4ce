"""One run: read the corpus, skip what the output already holds, stream the rest through an
actor pool, write parts as results arrive, summarize.

The driver writes, not Ray's ``write_parquet``: a retried write task could leave a file
behind twice, while results streamed to one writer pass the store's exactly-once check and
commit in manifest order (see ``store``).
"""

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY
from . import compat
from .actor import Annotator
from .inputs import read_corpus
from .store import OutputStore


@dataclass
class RunConfig:
    """How to spread the work; the CLI's options."""

    workers: int = 1
    gpus_per_worker: float = 0.0
    threads_per_worker: int = 1
    batch_size: int = 16  # docs per Ray batch, and nlp.pipe's batch size within it
    docbin: bool = False
    code: Optional[str] = None  # a Python file each actor imports (custom components)
    spans_key: str = DEFAULT_SPANS_KEY
    max_task_retries: int = 3
    shard_docs: int = 1000  # docs per output part: also how much a crashed driver redoes
    address: Optional[str] = None  # an existing Ray cluster; None: the current or a local one
    progress: bool = True


@dataclass
class Summary:
    """What a run did; written to OUTPUT/summary.json and printed by the CLI."""

    docs: int = 0
    skipped: int = 0  # already in the output (resume)
    failed: int = 0
    words: int = 0  # spaCy tokens of the docs annotated
    entities: int = 0
    seconds: float = 0.0  # from dataset creation to the last part written (Ray already up)
    first_result_seconds: Optional[float] = None  # actor start + model load + first batch
    ray_init_seconds: float = 0.0
    duplicates_dropped: int = 0
    workers: int = 1
    threads_per_worker: int = 1
    gpus_per_worker: float = 0.0
    ray_version: str = ""
    errors: Dict[str, str] = field(default_factory=dict)  # id -> error, first 100

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {**asdict(self), "words_per_second": self.words_per_second}


def annotate_corpus(
    model: Union[str, Path],
    input_path: Union[str, Path],
    output: Union[str, Path],
    config: Optional[RunConfig] = None,
) -> Summary:
    """Annotate ``input_path`` into ``output`` with ``model`` on a Ray actor pool."""
    config = config or RunConfig()
    ray = compat.import_ray()
    corpus = read_corpus(input_path)  # validate before any cluster or model work
    store = OutputStore(output, docbin=config.docbin)
    done = store.recover()
    todo = corpus.filter(pc.invert(pc.is_in(corpus.column("id"), pa.array(done, pa.string()))))
    summary = Summary(skipped=corpus.num_rows - todo.num_rows, ray_version=ray.__version__)
    summary.workers, summary.threads_per_worker = config.workers, config.threads_per_worker
    summary.gpus_per_worker = config.gpus_per_worker
    if todo.num_rows:
        started = _ensure_ray(ray, config.address, summary)
        try:
            _stream(ray, model, todo, store, config, summary)
        finally:
            if started:
                ray.shutdown()
    summary.duplicates_dropped = store.duplicates
    (Path(output) / "summary.json").write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def _ensure_ray(ray: Any, address: Optional[str], summary: Summary) -> bool:
    """Connect to ``address`` or start a local Ray unless one is up; True if started here."""
    if ray.is_initialized():
        return False
    start = time.perf_counter()
    ray.init(address=address)
    summary.ray_init_seconds = time.perf_counter() - start
    return True


def build_dataset(ray: Any, model: Union[str, Path], todo: pa.Table, config: RunConfig) -> Any:
    """The lazy Ray dataset: one input block per batch, mapped by a pool of Annotators."""
    size = config.batch_size
    blocks = [todo.slice(i, size) for i in range(0, todo.num_rows, size)]
    dataset = ray.data.from_arrow(blocks)
    resources: Dict[str, Any] = {"num_cpus": config.threads_per_worker}
    if config.gpus_per_worker:
        resources["num_gpus"] = config.gpus_per_worker
    return compat.map_batches(
        dataset,
        Annotator,
        batch_size=size,
        batch_format="pyarrow",
        fn_constructor_kwargs={
            "model": _absolute(model),
            "threads": config.threads_per_worker,
            "gpu": config.gpus_per_worker > 0,
            "code": _absolute(config.code) if config.code else None,
            "spans_key": config.spans_key,
            "docbin": config.docbin,
            "pipe_batch_size": size,
        },
        **resources,
        **compat.pool_kwargs(config.workers, ray.__version__),
        **compat.retry_kwargs(config.max_task_retries, ray.__version__),
    )


def _absolute(path: Union[str, Path]) -> str:
    """Actors may start in another directory; a package name (no such path) stays as is."""
    return str(Path(path).resolve()) if Path(path).exists() else str(path)


def _stream(
    ray: Any,
    model: Union[str, Path],
    todo: pa.Table,
    store: OutputStore,
    config: RunConfig,
    summary: Summary,
) -> None:
    """Pull result batches as actors finish them; write a part every ``shard_docs`` docs."""
    start = time.perf_counter()
    dataset = build_dataset(ray, model, todo, config)
    pending: List[pa.Table] = []
    # No prefetch: with it, Ray 2.60 holds each finished batch back until the next one is
    # done, which delays writes (what a crash loses) and progress; the writer is not the
    # bottleneck, so nothing is gained.
    batches = dataset.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=0)
    for batch in batches:
        if summary.first_result_seconds is None:
            summary.first_result_seconds = time.perf_counter() - start
        pending.append(batch)
        if sum(t.num_rows for t in pending) >= config.shard_docs:
            _flush(store, pending, summary, todo.num_rows, start, config.progress)
            pending = []
    _flush(store, pending, summary, todo.num_rows, start, config.progress)
    summary.seconds = time.perf_counter() - start


def _flush(
    store: OutputStore,
    pending: List[pa.Table],
    summary: Summary,
    total: int,
    start: float,
    progress: bool,
) -> None:
    """Write the pending results as one part and add them to the summary."""
    if not pending:
        return
    manifest = store.write(pa.concat_tables(pending))
    for row in manifest.to_pylist():
        summary.docs += 1
        if row["status"] == "ok":
            summary.words += row["n_tokens"]
            summary.entities += row["n_entities"]
        else:
            summary.failed += 1
            if len(summary.errors) < 100:
                summary.errors[row["id"]] = row["error"]
    if progress:
        rate = summary.words / max(time.perf_counter() - start, 1e-9)
        print(
            f"[ctxext] {summary.docs}/{total} docs written ({summary.failed} failed), "
            f"{rate:,.0f} words/s",
            file=sys.stderr,
        )
