"""What a rerun on the same output still has to do, without the driver holding the corpus.

Two steps. Here, the driver streams the committed manifest parts (four columns of one part
at a time) and counts each input file's committed docs against the doc count and file size
its rows record: a file whose docs are all committed, and whose size has not changed since,
is complete and is not read again. Then ``reading.inputs.check_input`` joins, on the workers, the
ids of the other files with the manifest's ids (a Ray Data groupby), so any doc already in
the output is left out, whatever file it came from before; the driver receives the ids of
those docs only (in a resume after a crash: those of the few files that were in flight).

Failed docs ("error" rows) count as done unless ``retry_failed``: then their manifest rows
are removed first (a part's manifest is rewritten without them, atomically; a part left
with no rows is removed), so they are annotated again and each doc keeps one row.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..reading.sources import Sources
from .store import OutputStore, write_parquet

logger = logging.getLogger(__name__)
COUNTED = ["source", "file_docs", "file_bytes", "status"]


@dataclass
class FileCounts:
    file_docs: int = 0
    file_bytes: int = -1
    committed: int = 0


@dataclass
class Plan:
    """The files to read, the files complete, and (after the check) the ids to leave out."""

    todo: Sources
    complete: Set[str] = field(default_factory=set)
    done: Dict[str, Set[str]] = field(default_factory=dict)  # source -> ids already written
    skipped: int = 0  # docs of the input already committed
    files_skipped: int = 0
    retried: int = 0  # failed docs whose rows were removed, to annotate again


def plan(store: OutputStore, sources: Sources, retry_failed: bool = False) -> Plan:
    """The files of ``sources`` that ``store`` has not completed."""
    sizes = dict(zip(sources.sources, sources.sizes))
    retried = _drop_failed(store, set(sizes)) if retry_failed else 0
    counts = _count(store, set(sizes))
    complete = {
        source
        for source, c in counts.items()
        if c.committed >= c.file_docs and c.file_bytes == sizes[source]
    }
    return Plan(
        todo=sources.select([s for s in sources.sources if s not in complete]),
        complete=complete,
        skipped=sum(counts[s].committed for s in complete),
        files_skipped=len(complete),
        retried=retried,
    )


def _count(store: OutputStore, wanted: Set[str]) -> Dict[str, FileCounts]:
    """Committed docs per input file, one manifest part in memory at a time."""
    counts: Dict[str, FileCounts] = {}
    for path in store.part_paths("manifest"):
        table = read_part(path, COUNTED)
        for source, file_docs, file_bytes, _ in zip(*(c.to_pylist() for c in table.columns)):
            if source not in wanted:
                continue
            entry = counts.setdefault(source, FileCounts(file_docs, file_bytes))
            if (entry.file_docs, entry.file_bytes) != (file_docs, file_bytes):
                entry.file_bytes = -1  # rows from two versions of the file: read it again
            entry.committed += 1
    return counts


def _drop_failed(store: OutputStore, wanted: Set[str]) -> int:
    """Remove the "error" rows of the input's files from the manifest; returns how many."""
    dropped = 0
    for path in store.part_paths("manifest"):
        table = read_part(path)
        failed = pc.and_(
            pc.equal(table.column("status"), "error"),
            pc.is_in(table.column("source"), value_set=pa.array(sorted(wanted), pa.string())),
        )
        n_failed = pc.sum(failed).as_py() or 0
        if not n_failed:
            continue
        kept = table.filter(pc.invert(failed))
        if kept.num_rows:
            write_parquet(kept, path)
        else:
            store.remove_part(path.stem)
        dropped += n_failed
    if dropped:
        logger.warning("--retry-failed: %d failed docs will be annotated again", dropped)
    return dropped


def read_part(path: Path, columns: Optional[List[str]] = None) -> pa.Table:
    """A manifest part (some columns); ``ValueError`` if it predates per-file resume."""
    names = pq.read_schema(path).names
    if "file_bytes" not in names:
        raise ValueError(
            f"{path}: this manifest part has no source columns: the output was written by an "
            "earlier version of spacy_ctxext.distributed. Finish it with that version, or "
            "annotate into a new output folder."
        )
    return pq.read_table(path, columns=columns)
