"""``python -m spacy_ctxext.distributed MODEL INPUT OUTPUT [options]``."""

import argparse
from typing import TYPE_CHECKING, Optional, Sequence

from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY
from . import compat

if TYPE_CHECKING:
    from .run import Summary

DESCRIPTION = (
    "Annotate a corpus on Ray Data, one spaCy pipeline per actor: entities and a per-doc "
    "manifest as Parquet (optionally DocBin shards). Re-run with the same OUTPUT to resume."
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.distributed", description=DESCRIPTION
    )
    parser.add_argument("model", help="pipeline name or path (spacy.load in each actor)")
    parser.add_argument("input", help=".jsonl or .parquet with a text column, or a folder of .txt")
    parser.add_argument("output", help="output folder (entities/, manifest/, docs/, summary.json)")
    parser.add_argument(
        "--workers", "-n", type=int, default=1, help="actors, each with one pipeline"
    )
    parser.add_argument(
        "--gpus-per-worker",
        "-g",
        type=float,
        default=0.0,
        help="GPUs per actor; 1 with --workers = the number of GPUs",
    )
    parser.add_argument(
        "--threads-per-worker",
        "-t",
        type=int,
        default=1,
        help="CPUs Ray reserves per actor, and its torch threads",
    )
    parser.add_argument("--batch-size", "-b", type=int, default=16, help="docs per Ray batch")
    parser.add_argument("--docbin", action="store_true", help="also write DocBin shards (docs/)")
    parser.add_argument("--code", help="Python file each actor imports (custom components)")
    parser.add_argument(
        "--spans-key", default=DEFAULT_SPANS_KEY, help="span group with entity scores"
    )
    parser.add_argument(
        "--max-task-retries", type=int, default=3, help="retries of a batch whose actor died"
    )
    parser.add_argument("--shard-docs", type=int, default=1000, help="docs per output part")
    parser.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--quiet", action="store_true", help="no per-part progress lines")
    return parser.parse_args(argv)


def format_summary(summary: "Summary") -> str:
    """The closing lines a user reads: how much, how fast, what failed."""
    lines = [
        f"{summary.docs} docs annotated ({summary.skipped} already done, {summary.failed} failed), "
        f"{summary.words:,} words, {summary.entities:,} entities in {summary.seconds:.1f}s: "
        f"{summary.words_per_second:,.0f} words/s "
        f"({summary.workers} workers x {summary.threads_per_worker} threads)"
    ]
    lines += [f"  failed {doc_id}: {error}" for doc_id, error in list(summary.errors.items())[:10]]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> "Summary":
    args = parse_args(argv)
    compat.import_ray()  # the install hint, before pyarrow (which ray[data] brings) is needed
    from .run import RunConfig, annotate_corpus

    config = RunConfig(
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        threads_per_worker=args.threads_per_worker,
        batch_size=args.batch_size,
        docbin=args.docbin,
        code=args.code,
        spans_key=args.spans_key,
        max_task_retries=args.max_task_retries,
        shard_docs=args.shard_docs,
        address=args.address,
        progress=not args.quiet,
    )
    summary = annotate_corpus(args.model, args.input, args.output, config)
    print(format_summary(summary))
    return summary
