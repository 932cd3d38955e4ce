"""Whether an annotate run starts afresh or resumes an interrupted one, and what it did.

A run is resumed only if its record (input, model, settings) equals the interrupted
one's and the input's first docs have the ids the committed parts hold, in order: the
resumed run then annotates exactly the docs not yet in a part, batched as the whole run
would have batched them (parts hold whole batches), so the outputs are those of an
uninterrupted run. ``--restart`` starts over.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

from spacy.language import Language

from .inputs import Record
from .parts import PartStore, RunMismatchError

__all__ = [
    "DEFAULT_PART_DOCS",
    "FINAL_NAMES",
    "RunSummary",
    "begin",
    "part_size",
    "run_record",
    "skip_done",
]

FINAL_NAMES = ("entities.jsonl", "annotations.spacy", "entities.html")
DEFAULT_PART_DOCS = 256


@dataclass
class RunSummary:
    """What a run did, kept up to date as parts are written, for the message at its end."""

    total: int = 0
    skipped: int = 0  # done by an earlier, interrupted run
    annotated: int = 0  # done by this run, in written parts
    entities: int = 0
    parts: str = ""  # the parts folder

    def add(self, rows: List[Dict[str, Any]], *, earlier: bool = False) -> None:
        if earlier:
            self.skipped += len(rows)
        else:
            self.annotated += len(rows)
        self.entities += sum(row["n_entities"] for row in rows)

    @property
    def saved(self) -> int:
        """Docs in written parts, by this run or an earlier one."""
        return self.skipped + self.annotated

    def counts(self, seconds: float) -> Dict[str, Any]:
        """What ``annotate`` returns: docs and entities in the outputs, docs annotated by
        this run and skipped as done by an earlier one, this run's seconds."""
        return {
            "docs": self.saved,
            "entities": self.entities,
            "annotated": self.annotated,
            "skipped": self.skipped,
            "seconds": seconds,
        }

    def stopped(self, why: str) -> str:
        """The message of a run that did not finish."""
        saved = self.saved
        return (
            f"{why}: {saved} of {self.total} docs are saved in {self.parts} "
            f"({self.annotated} done now, {self.skipped} skipped as done by an earlier run, "
            f"{self.total - saved} not done); no final output was written. Run the same "
            "command again to resume, or add --restart to start over."
        )


def part_size(part_docs: int, batch_size: int) -> int:
    """Docs per part: ``part_docs`` rounded up to whole batches, so a resumed run batches
    its docs as an uninterrupted one does (batch mates can change the last bits)."""
    return max(1, math.ceil(part_docs / max(batch_size, 1))) * max(batch_size, 1)


def run_record(
    model: Union[str, Path, Language], input_path: Union[str, Path], n_docs: int, **settings: Any
) -> Dict[str, Any]:
    """What identifies a run: a resume must match it."""
    from .. import __version__

    return {
        "input": str(Path(input_path).resolve()),
        "n_docs": n_docs,
        "model": _model_name(model),
        "spacy_ctxext": __version__,
        **settings,
    }


def _model_name(model: Union[str, Path, Language]) -> str:
    if isinstance(model, Language):
        return f"{model.lang}_{model.meta.get('name', 'pipeline')} {model.pipe_names}"
    return str(Path(model).resolve()) if Path(model).exists() else str(model)


def begin(
    store: PartStore, run: Dict[str, Any], output_dir: Path, *, restart: bool
) -> Tuple[List[Dict[str, Any]], str]:
    """Resume the interrupted run in ``store`` or start a fresh one; returns the committed
    manifest rows and the line that says which."""
    n_docs = run["n_docs"]
    if store.exists() and not restart:
        rows = store.recover(run)
        return rows, (
            f"resuming: {len(rows)} of {n_docs} docs already done in {store.root} "
            "(add --restart to start over)"
        )
    note = ""
    if store.exists():
        note = f"; --restart: removed the parts of an earlier run in {store.root}"
    stale = [name for name in FINAL_NAMES if (output_dir / name).exists()]
    for name in stale:
        (output_dir / name).unlink()  # never beside parts of another run, looking complete
    if stale:
        note += f"; removed the outputs of an earlier run ({', '.join(stale)})"
    store.start(run)
    return [], f"annotating {n_docs} docs into {output_dir}{note}"


def skip_done(
    records: Iterator[Record], rows: List[Dict[str, Any]], input_path: Union[str, Path]
) -> Iterator[Record]:
    """The records not yet in a part, after checking that the input's first docs are the
    committed ones (by id, in order)."""
    for position, row in enumerate(rows, start=1):
        record = next(records, None)
        if record is None or str(record[0]) != row["id"]:
            found = "no doc" if record is None else f"id {record[0]!r}"
            raise RunMismatchError(
                f"{input_path}: doc {position} has {found}, but doc {position} of the "
                f"interrupted run had id {row['id']!r}: the input changed since. Pass "
                "--restart to start over."
            )
    return records
