"""One run: list the input, lock the output, plan the resume, check the input, stream the
rest through an actor pool that annotates and writes, summarize.

The driver coordinates only: read tasks read and parse the files (``reading``), each actor
writes the parts of the batches it annotates (``output.store.write_part``), and the driver counts
the manifest rows that come back (``progress``). It holds the list of files, the ids of
files a crashed run left half done (``output.resume``), and no text.
"""

import json
import logging
import os
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Optional, Union

from . import compat
from .actor import Annotator
from .config import RunConfig
from .output import resume
from .output.lock import OutputLock
from .output.store import OutputStore
from .progress import Progress, Summary
from .reading.inputs import check_input, find_input_error, read_concurrency, read_docs
from .reading.sources import InputError, resolve

__all__ = ["RunConfig", "Summary", "annotate_corpus"]
logger = logging.getLogger(__name__)

# Ray hands a task's result under max_direct_call_object_size (100 KiB) to its owner, the
# driver, in the driver's own heap instead of the object store. The id check's blocks (one
# file's ids; their shuffle partitions) are that small for files of a few MB and are all
# held at the groupby's barrier: 100 files of 2 MB put 30 MB of ids in the driver.
# 1 KiB keeps only counts inline. Read by the raylet and workers that ray.init starts; a
# cluster started with ``ray start`` needs it in that command's environment (docs/ray.md).
SMALL_RESULT_BYTES = 1024


def annotate_corpus(
    model: Union[str, Path],
    input_path: Union[str, Path],
    output: Union[str, Path],
    config: Optional[RunConfig] = None,
) -> Summary:
    """Annotate ``input_path`` (a file, folder or glob; see ``reading.sources``) into ``output``."""
    config = config or RunConfig()
    ray = compat.import_ray()
    sources = resolve(str(input_path))  # a missing or unknown input fails before any Ray
    run = Run(ray, str(model), Path(output).resolve(), config)
    summary = run.summary
    summary.files, summary.input_bytes = len(sources.paths), sources.total_bytes
    with OutputLock(run.output, run.run_id, config.lock_stale_seconds):
        run.store.recover()
        plan = resume.plan(run.store, sources, retry_failed=config.retry_failed)
        summary.skipped, summary.files_skipped = plan.skipped, plan.files_skipped
        summary.retried = plan.retried
        if plan.todo.paths:
            started = _ensure_ray(ray, config, summary)
            try:
                run.check_and_stream(plan)
            finally:
                if started:
                    ray.shutdown()
        summary_json = json.dumps(summary.as_dict(), indent=2) + "\n"
        (run.output / "summary.json").write_text(summary_json, encoding="utf8")
    return summary


def _ensure_ray(ray: Any, config: RunConfig, summary: Summary) -> bool:
    """Connect to ``config.address`` or start a local Ray unless one is up; True if started
    here. ``--quiet`` also turns Ray Data's progress bars off."""
    if not config.progress:
        ray.data.DataContext.get_current().enable_progress_bars = False
    if ray.is_initialized():
        return False
    start = time.perf_counter()
    os.environ.setdefault("RAY_max_direct_call_object_size", str(SMALL_RESULT_BYTES))
    ray.init(address=config.address)
    summary.ray_init_seconds = time.perf_counter() - start
    return True


class Run:
    """One run's settings and state, once the output is locked."""

    def __init__(self, ray: Any, model: str, output: Path, config: RunConfig) -> None:
        self.ray, self.model, self.output, self.config = ray, model, output, config
        self.run_id = uuid.uuid4().hex[:8]  # in part names: a retried batch rewrites its own
        self.store = OutputStore(output, docbin=config.docbin)
        self.summary = Summary(ray_version=ray.__version__, workers=config.workers)
        self.summary.threads_per_worker = config.threads_per_worker
        self.summary.gpus_per_worker = config.gpus_per_worker

    def check_and_stream(self, plan: resume.Plan) -> None:
        """The input check, then the annotation; an input error from a read task is
        re-raised as itself, not wrapped in Ray's traceback."""
        try:
            self._check(plan)
            if self.summary.skipped < self.summary.input_docs:
                self._stream(plan)
        except Exception as err:
            found = find_input_error(err)
            if found is None or found is err:
                raise
            raise InputError(str(found.args[0]) if found.args else str(found)) from None

    def _check(self, plan: resume.Plan) -> None:
        """Validate the files to read, and leave out what the output holds (``output.resume``)."""
        start = time.perf_counter()
        manifest = [str(path) for path in self.store.part_paths("manifest")]
        reads = read_concurrency(self.config.workers)
        check = check_input(self.ray, plan.todo, manifest, reads)
        self.summary.check_seconds = time.perf_counter() - start
        self.summary.input_docs = plan.skipped + check.input_docs
        plan.done = check.done
        self.summary.skipped += sum(len(ids) for ids in check.done.values())
        if check.output_duplicates:
            logger.warning(
                "%s: %d ids are in the manifest more than once",
                self.output,
                check.output_duplicates,
            )
        if check.moved:
            warnings.warn(
                f"{check.moved} docs of the input are in the output under another input "
                f"file, e.g. {'; '.join(check.moved_examples)}: they are skipped as done. If "
                "they are other docs, give them their own ids (or leave ids out for ids from "
                "the file path and line) or annotate into another output folder.",
                stacklevel=2,
            )

    def build_dataset(self, plan: resume.Plan) -> Any:
        """The lazy Ray dataset: the files read and parsed by read tasks, then batches of
        ``batch_size`` docs annotated and written by a pool of Annotators."""
        config = self.config
        resources: Dict[str, Any] = {"num_cpus": config.threads_per_worker}
        if config.gpus_per_worker:
            resources["num_gpus"] = config.gpus_per_worker
        return compat.map_batches(
            read_docs(self.ray, plan.todo, plan.done, read_concurrency(config.workers)),
            Annotator,
            batch_size=config.batch_size,
            batch_format="pyarrow",
            fn_constructor_kwargs={
                "model": _absolute(self.model),
                "output": str(self.output),
                "run_id": self.run_id,
                "config": replace(config, code=_absolute(config.code) if config.code else None),
            },
            **resources,
            **compat.pool_kwargs(config.workers, self.ray.__version__),
            **compat.retry_kwargs(config.max_task_retries, self.ray.__version__),
        )

    def _stream(self, plan: resume.Plan) -> None:
        """Count the manifest rows of each part as its actor commits it."""
        summary = self.summary
        start = time.perf_counter()
        dataset = self.build_dataset(plan)
        progress = Progress(summary, summary.input_docs - summary.skipped, self.config.progress)
        # No prefetch: with it, Ray 2.60 holds each finished batch back until the next one
        # is done, which delays the progress lines (the parts are written by then anyway).
        batches = dataset.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=0)
        for batch in batches:
            if summary.first_result_seconds is None:
                summary.first_result_seconds = time.perf_counter() - start
            summary.add(batch)
            progress.update()
        summary.seconds = time.perf_counter() - start
        progress.update(final=True)
        done_before = {source: len(ids) for source, ids in plan.done.items()}
        summary.check_once(done_before, plan.todo.sources)
        if summary.duplicates or summary.missing or summary.missing_files:
            logger.warning(
                "%s: %d docs were written more than once, %d not at all and %d files gave "
                "no doc (counted per input file); the output is not exactly once: rerun the "
                "command to add what is missing, and please report it",
                self.output,
                summary.duplicates,
                summary.missing,
                summary.missing_files,
            )


def _absolute(path: Union[str, Path]) -> str:
    """Actors may start in another directory; a package name (no such path) stays as is."""
    return str(Path(path).resolve()) if Path(path).exists() else str(path)
