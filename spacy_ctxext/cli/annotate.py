"""The annotate command line: raw text through any spaCy pipeline that sets ``doc.ents``.

Input is a folder of ``.txt`` files (one doc per file) or a ``.jsonl`` file with
``{"text": ..., "id": ...}`` per line ("id" optional, default: the line number).
Writes ``annotations.spacy`` (DocBin), ``entities.jsonl`` and, with ``--html``,
``entities.html`` (displaCy) into the output folder. On the page each entity's label carries
its confidence ("PER 0.97") where the span group has scores; those below ``--low-confidence``
are outlined dashed. ``nlp.max_length`` is raised to the longest input text (spaCy's E088).

The docs are written in parts (``OUTPUT_DIR/parts``, see ``annotation.parts``) and the
outputs assembled from them when every doc is done, so no output is ever partial under its
name; an interrupted run (Ctrl-C, a crash) resumes where it stopped when run again, or
starts over with ``--restart``. Exit status: 0 when complete, 1 on an error, 130 when
interrupted.

    python -m spacy_ctxext.cli.annotate MODEL INPUT OUTPUT_DIR [--html] [--restart]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Union

from spacy.language import Language
from tqdm import tqdm

from ..annotation.html import LOW_CONFIDENCE
from ..annotation.inputs import Record, scan_input
from ..annotation.outputs import write_outputs
from ..annotation.parts import PartStore, PendingPart
from ..annotation.records import doc_entities
from ..annotation.resume import (
    DEFAULT_PART_DOCS,
    RunSummary,
    begin,
    part_size,
    run_record,
    skip_done,
)
from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY
from ..pipeline.loading import load_pipeline

__all__ = ["annotate", "main"]

PROG = "python -m spacy_ctxext.cli.annotate"  # `spacy ctxext annotate` passes its own
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130  # 130: a shell's code for a command stopped by Ctrl-C


def annotate(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    batch_size: int = 8,
    gpu_id: int = -1,
    html: bool = False,
    n_html: int = 5,
    spans_key: str = DEFAULT_SPANS_KEY,
    low_confidence: float = LOW_CONFIDENCE,
    part_docs: int = DEFAULT_PART_DOCS,
    restart: bool = False,
    summary: Optional[RunSummary] = None,
    report: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Run ``model`` over the input and write the annotations; returns counts and timing
    (docs, entities: in the outputs; annotated: by this run; skipped: by an earlier one).

    Raises ``nlp.max_length`` (never lowers it) to the longest text, so no input hits E088.
    The pipeline runs as saved, as ``spacy.load(model)(text)`` runs it: a pipeline that
    windows sentences ships what sets their starts.

    part_docs: docs per part (rounded up to whole batches); an interrupted run loses at
        most one part's work. restart: drop an interrupted run's parts instead of resuming.
    summary: updated as parts are written, for the caller's message if the run stops.
    report: where the line saying whether the run resumes goes.
    """
    n_docs, longest, records = scan_input(input_path)
    nlp = load_pipeline(model, gpu_id)
    nlp.max_length = max(nlp.max_length, longest)
    out = Path(output_dir)
    size = part_size(part_docs, batch_size)
    run = run_record(
        model, input_path, n_docs, spans_key=spans_key, batch_size=batch_size, part_docs=size
    )
    store = PartStore(out)
    summary = RunSummary() if summary is None else summary
    summary.total, summary.parts = n_docs, str(store.root)
    done, message = begin(store, run, out, restart=restart)
    report(message)
    summary.add(done, earlier=True)
    start = time.perf_counter()
    todo = skip_done(records, done, input_path)
    _annotate_parts(
        nlp, todo, store, summary, batch_size=batch_size, size=size, spans_key=spans_key
    )
    write_outputs(
        store,
        out,
        nlp.vocab,
        html=html,
        n_html=n_html,
        spans_key=spans_key,
        low_confidence=low_confidence,
    )
    return summary.counts(time.perf_counter() - start)


def _annotate_parts(
    nlp: Language,
    records: Iterator[Record],
    store: PartStore,
    summary: RunSummary,
    *,
    batch_size: int,
    size: int,
    spans_key: str,
) -> None:
    """Annotate the records, writing a part every ``size`` docs and one for the rest."""
    pairs = ((text, doc_id) for doc_id, text in records)
    docs = nlp.pipe(pairs, batch_size=batch_size, as_tuples=True)
    part = PendingPart()
    progress = tqdm(docs, total=summary.total, initial=summary.skipped, desc="annotate", unit="doc")
    for doc, doc_id in progress:
        doc.user_data["id"] = doc_id
        part.add(doc, doc_id, doc_entities(doc, spans_key))
        if len(part) == size:
            store.write(part)
            summary.add(part.rows)
            part = PendingPart()
    if len(part):
        store.write(part)
        summary.add(part.rows)


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> Dict[str, Any]:
    """The command line; exits 1 on an error and 130 when interrupted, after saying how
    many docs are saved and how to resume."""
    args = _parser(prog).parse_args(argv)
    summary = RunSummary()
    try:
        result = annotate(
            args.model,
            args.input,
            args.output_dir,
            batch_size=args.batch_size,
            gpu_id=args.gpu_id,
            html=args.html,
            n_html=args.n_html,
            spans_key=args.spans_key,
            low_confidence=args.low_confidence,
            part_docs=args.part_docs,
            restart=args.restart,
            summary=summary,
        )
    except KeyboardInterrupt:
        _stop(summary, "interrupted", EXIT_INTERRUPTED)
    except (ValueError, OSError) as err:  # bad input, a damaged pipeline, a failed write
        _stop(summary, f"error: {err}", EXIT_ERROR)
    except BaseException as err:
        _stop(summary, f"stopped by {type(err).__name__}", None)
        raise
    print(
        f"{result['docs']} docs, {result['entities']} entities in {result['seconds']:.1f}s "
        f"-> {args.output_dir} ({result['annotated']} annotated now, {result['skipped']} "
        "skipped as done by an earlier run, 0 failed)"
    )
    return result


def _stop(summary: RunSummary, why: str, code: Optional[int]) -> None:
    """Say what a run that did not finish left, and exit with ``code`` (None: return)."""
    print(summary.stopped(why) if summary.parts else why, file=sys.stderr)
    if code is not None:
        raise SystemExit(code)


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("model", help="pipeline name or path (spacy.load)")
    parser.add_argument("input", help="folder of .txt files, or a .jsonl file")
    parser.add_argument("output_dir", help="folder for annotations.spacy, entities.jsonl(.html)")
    parser.add_argument("--html", action="store_true", help="also write entities.html")
    parser.add_argument("--n-html", type=int, default=5, help="docs in the HTML page")
    parser.add_argument("--batch-size", "-b", type=int, default=8)
    parser.add_argument("--gpu-id", "-g", type=int, default=-1)
    parser.add_argument(
        "--spans-key", default=DEFAULT_SPANS_KEY, help="span group with confidences"
    )
    parser.add_argument(
        "--low-confidence",
        type=float,
        default=LOW_CONFIDENCE,
        help="on the HTML page, outline entities whose confidence is below this",
    )
    parser.add_argument(
        "--part-docs",
        type=int,
        default=DEFAULT_PART_DOCS,
        help="docs per part written to OUTPUT_DIR/parts (an interrupted run redoes one at most)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="drop the parts of an interrupted run in OUTPUT_DIR and start over (default: resume)",
    )
    return parser


if __name__ == "__main__":
    main()
