"""The output folder: parts of entities, manifest and Docs, written by the workers.

    OUTPUT/entities/part-RUN-HASH.parquet   one row per entity (schema.ENTITIES)
    OUTPUT/manifest/part-RUN-HASH.parquet   one row per doc (schema.MANIFEST)
    OUTPUT/docs/part-RUN-HASH.spacy         the annotated Docs (with --docbin)
    OUTPUT/summary.json                     the last run's summary
    OUTPUT/.lock                            while a run writes (``lock``)

Each actor writes the part of each batch it annotates (``write_part``), so output
throughput grows with the workers; the driver only lists and cleans. Exactly once:

- parts are written and committed as annotate's are (``annotation.part_folder``): each
  file atomically, the manifest last. A part without one (its writer died in between) is
  removed by the next run (``OutputStore.recover``) and its docs are done again;
- a part's name is the run's id and a hash of its docs' ids, so a batch that Ray retries
  (its actor or node died after writing) rewrites the same files instead of adding a copy;
- resume reads the committed manifest and leaves those docs out (``resume``).

Readers: ``pyarrow.parquet.read_table(OUTPUT / "entities")``.
"""

import hashlib
import logging
from functools import partial
from pathlib import Path
from typing import Dict, List, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from spacy.tokens import Doc, DocBin

from ...annotation.part_folder import COMMIT, FileContent, PartFolder
from ...io_atomic import atomic_path
from .. import schema

logger = logging.getLogger(__name__)
KINDS = {"entities": ".parquet", "manifest": ".parquet", "docs": ".spacy"}


class OutputStore(PartFolder):
    """The output folder's parts, and the driver's clean-up before a run."""

    def __init__(self, root: Union[str, Path], docbin: bool = False) -> None:
        super().__init__(root, KINDS)
        self.docbin = docbin
        for kind, folder in self.folders.items():
            if kind != "docs" or docbin:
                folder.mkdir(parents=True, exist_ok=True)

    def recover(self) -> int:
        """Remove uncommitted parts and temporary files; returns the part files removed."""
        removed = self.drop_uncommitted()
        for path in removed:
            logger.warning("removing %s: its manifest part was never written", path.stem)
        return len(removed)


def part_name(run_id: str, ids: Sequence[str]) -> str:
    """The same for a retried batch (same run, same docs), different for any other."""
    digest = hashlib.sha1("\n".join(ids).encode("utf8")).hexdigest()[:16]
    return f"part-{run_id}-{digest}"


def write_part(
    root: Union[str, Path], run_id: str, results: pa.Table, docs: List[Doc], docbin: bool
) -> pa.Table:
    """Write one batch's part from ``schema.RESULT`` rows and their Docs (None for a failed
    doc); returns its manifest rows. Runs in the actor that annotated the batch."""
    manifest = results.select(schema.MANIFEST.names)
    files: Dict[str, FileContent] = {"entities": partial(pq.write_table, entity_table(results))}
    if docbin:
        files["docs"] = DocBin(store_user_data=True, docs=docs).to_bytes()
    files[COMMIT] = partial(pq.write_table, manifest)
    name = part_name(run_id, results.column("id").to_pylist())
    PartFolder(root, KINDS).write_part(name, files)
    return manifest


def write_parquet(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:  # hidden while written: dataset readers skip it
        pq.write_table(table, tmp)


def entity_table(results: pa.Table) -> pa.Table:
    """The nested ``entities`` column as one flat row per entity, keyed by doc id."""
    nested = results.column("entities").combine_chunks()
    parents = pc.list_parent_indices(nested)
    flat = pc.list_flatten(nested)
    columns = {"id": pc.take(results.column("id"), parents)}
    for field, _ in schema.ENTITY_FIELDS:
        columns[field] = pc.struct_field(flat, field)
    return pa.table(columns, schema=schema.ENTITIES)
