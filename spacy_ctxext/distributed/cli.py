"""``python -m spacy_ctxext.distributed MODEL INPUT OUTPUT [options]``."""

import argparse
from typing import TYPE_CHECKING, Optional, Sequence

from . import compat
from .config import RunConfig

if TYPE_CHECKING:
    from .progress import Summary

DESCRIPTION = (
    "Annotate a corpus on Ray Data, one spaCy pipeline per actor: entities and a per-doc "
    "manifest as Parquet (optionally DocBin parts), read and written by the workers. Re-run "
    "with the same OUTPUT to resume."
)
DEFAULTS = RunConfig()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.distributed", description=DESCRIPTION
    )
    parser.add_argument("model", help="pipeline name or path (spacy.load in each actor)")
    parser.add_argument(
        "input",
        help=(
            "a .jsonl or .parquet file (a text column) or .txt (one doc), a folder of them or "
            "a quoted glob ('shards/*.jsonl'); local, s3://, gs://, hdfs://"
        ),
    )
    parser.add_argument(
        "output",
        help="output folder on storage every node sees (entities/, manifest/, docs/, summary.json)",
    )
    _add_spread_options(parser)
    _add_output_options(parser)
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines, no Ray Data progress bars"
    )
    return parser.parse_args(argv)


def _add_spread_options(parser: argparse.ArgumentParser) -> None:
    """How the work is spread over actors and batches."""
    add = parser.add_argument
    add(
        "--workers", "-n", type=int, default=DEFAULTS.workers, help="actors, each with one pipeline"
    )
    add(
        "--gpus-per-worker",
        "-g",
        type=float,
        default=DEFAULTS.gpus_per_worker,
        help="GPUs per actor; 1 with --workers = the number of GPUs",
    )
    add(
        "--threads-per-worker",
        "-t",
        type=int,
        default=DEFAULTS.threads_per_worker,
        help="CPUs Ray reserves per actor, and its torch threads",
    )
    add(
        "--batch-size",
        "-b",
        type=int,
        default=DEFAULTS.batch_size,
        help="docs per Ray batch and output part",
    )
    add("--code", help="Python file each actor imports (custom components)")
    add(
        "--max-task-retries",
        type=int,
        default=DEFAULTS.max_task_retries,
        help="retries of a batch whose actor died",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """What is written, and how a rerun treats an output that exists."""
    add = parser.add_argument
    add("--docbin", action="store_true", help="also write DocBin shards (docs/)")
    add("--spans-key", default=DEFAULTS.spans_key, help="span group with entity scores")
    add(
        "--retry-failed",
        action="store_true",
        help="on a rerun, annotate again the docs that failed (by default they count as done)",
    )
    add(
        "--lock-stale-seconds",
        type=float,
        default=DEFAULTS.lock_stale_seconds,
        help="take over the output's lock once its run has not renewed it for this long",
    )


def main(argv: Optional[Sequence[str]] = None) -> "Summary":
    args = parse_args(argv)
    compat.import_ray()  # the install hint, before pyarrow (which ray[data] brings) is needed
    from .progress import format_summary
    from .run import annotate_corpus

    config = RunConfig(
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        threads_per_worker=args.threads_per_worker,
        batch_size=args.batch_size,
        docbin=args.docbin,
        code=args.code,
        spans_key=args.spans_key,
        max_task_retries=args.max_task_retries,
        address=args.address,
        progress=not args.quiet,
        retry_failed=args.retry_failed,
        lock_stale_seconds=args.lock_stale_seconds,
    )
    summary = annotate_corpus(args.model, args.input, args.output, config)
    print(format_summary(summary))
    return summary
