"""The output folder: parts of entities, manifest and Docs, written by the workers.

    OUTPUT/entities/part-RUN-HASH.parquet   one row per entity (schema.ENTITIES)
    OUTPUT/manifest/part-RUN-HASH.parquet   one row per doc (schema.MANIFEST)
    OUTPUT/docs/part-RUN-HASH.spacy         the annotated Docs (with --docbin)
    OUTPUT/summary.json                     the last run's summary
    OUTPUT/.lock                            while a run writes (``lock``)

Each actor writes the part of each batch it annotates (``write_part``), so output
throughput grows with the workers; the driver only lists and cleans. Exactly once:

- each file goes to a hidden temporary name and is renamed, and a part's manifest file is
  written last: it is the commit. A part without one (its writer died in between) is
  removed by the next run (``OutputStore.recover``) and its docs are done again;
- a part's name is the run's id and a hash of its docs' ids, so a batch that Ray retries
  (its actor or node died after writing) rewrites the same files instead of adding a copy;
- resume reads the committed manifest and leaves those docs out (``resume``).

Readers: ``pyarrow.parquet.read_table(OUTPUT / "entities")``.
"""

import hashlib
import logging
import re
from pathlib import Path
from typing import Dict, List, Sequence, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from spacy.tokens import Doc, DocBin

from ...io_atomic import atomic_path, remove_temporary_files
from .. import schema

logger = logging.getLogger(__name__)
PART = re.compile(r"^(part-[0-9A-Za-z-]+)\.(parquet|spacy)$")
KINDS = {"entities": ".parquet", "manifest": ".parquet", "docs": ".spacy"}


class OutputStore:
    """The output folder's layout, and the driver's clean-up before a run."""

    def __init__(self, root: Union[str, Path], docbin: bool = False) -> None:
        self.root = Path(root)
        self.docbin = docbin
        self.dirs: Dict[str, Path] = {name: self.root / name for name in KINDS}
        for name, folder in self.dirs.items():
            if name != "docs" or docbin:
                folder.mkdir(parents=True, exist_ok=True)

    def recover(self) -> int:
        """Remove uncommitted parts and temporary files; returns the parts removed."""
        committed = set(self.part_names("manifest"))
        removed = 0
        for name in ("entities", "docs"):
            for part in self.part_names(name):
                if part not in committed:
                    logger.warning("removing %s: its manifest part was never written", part)
                    (self.dirs[name] / f"{part}{KINDS[name]}").unlink()
                    removed += 1
        for folder in self.dirs.values():
            if folder.is_dir():
                remove_temporary_files(folder)
        return removed

    def part_names(self, kind: str) -> List[str]:
        folder = self.dirs[kind]
        if not folder.is_dir():
            return []
        return sorted(m.group(1) for m in map(PART.match, (p.name for p in folder.iterdir())) if m)

    def manifest_paths(self) -> List[Path]:
        return [self.dirs["manifest"] / f"{name}.parquet" for name in self.part_names("manifest")]

    def remove_part(self, name: str) -> None:
        """Delete a part, its manifest (the commit) first."""
        for kind in ("manifest", "entities", "docs"):
            (self.dirs[kind] / f"{name}{KINDS[kind]}").unlink(missing_ok=True)


def part_name(run_id: str, ids: Sequence[str]) -> str:
    """The same for a retried batch (same run, same docs), different for any other."""
    digest = hashlib.sha1("\n".join(ids).encode("utf8")).hexdigest()[:16]
    return f"part-{run_id}-{digest}"


def write_part(
    root: Union[str, Path], run_id: str, results: pa.Table, docs: List[Doc], docbin: bool
) -> pa.Table:
    """Write one batch's part from ``schema.RESULT`` rows and their Docs (None for a failed
    doc); returns its manifest rows. Runs in the actor that annotated the batch."""
    root = Path(root)
    name = part_name(run_id, results.column("id").to_pylist())
    write_parquet(entity_table(results), root / "entities" / f"{name}.parquet")
    if docbin:
        with atomic_path(root / "docs" / f"{name}.spacy") as tmp:
            tmp.write_bytes(DocBin(store_user_data=True, docs=docs).to_bytes())
    manifest = results.select(schema.MANIFEST.names)
    write_parquet(manifest, root / "manifest" / f"{name}.parquet")  # the commit
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
