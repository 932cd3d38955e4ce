"""The output folder: Parquet shards of entities and of the manifest, DocBin shards, resume.

    OUTPUT/entities/part-000000.parquet   one row per entity (schema.ENTITIES)
    OUTPUT/manifest/part-000000.parquet   one row per doc (schema.MANIFEST)
    OUTPUT/docs/part-000000.spacy         the annotated Docs (with --docbin)
    OUTPUT/summary.json                   the last run's summary

Each shard is written to a hidden temporary name and renamed, and a part's manifest shard
is written last: it is the commit. A part without its manifest shard (the driver died
between the two) is deleted on the next run and its docs done again, so a doc is in the
output once or not at all. Readers: ``pyarrow.parquet.read_table(OUTPUT / "entities")``.
"""

import logging
import os
import re
from pathlib import Path
from typing import Dict, List, Set, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from spacy.tokens import DocBin

from . import schema

logger = logging.getLogger(__name__)
PART = re.compile(r"^part-(\d{6})\.(parquet|spacy)$")


class OutputStore:
    """Writes result batches as numbered parts; knows which docs a previous run finished."""

    def __init__(self, root: Union[str, Path], docbin: bool = False) -> None:
        self.root = Path(root)
        self.docbin = docbin
        self.dirs: Dict[str, Path] = {
            name: self.root / name for name in ("entities", "manifest", "docs")
        }
        for name, folder in self.dirs.items():
            if name != "docs" or docbin:
                folder.mkdir(parents=True, exist_ok=True)
        self.done: Set[str] = set()
        self.next_part = 0
        self.duplicates = 0

    def recover(self) -> Set[str]:
        """Drop uncommitted parts and temporary files; return the ids already in the manifest."""
        committed = {self._part_number(p) for p in self._parts("manifest")}
        for name in ("entities", "docs"):
            for path in self._parts(name):
                if self._part_number(path) not in committed:
                    logger.warning("removing %s: its manifest part was never written", path)
                    path.unlink()
        for folder in self.dirs.values():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
        for path in self._parts("manifest"):
            self.done.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
        self.next_part = max(committed, default=-1) + 1
        return set(self.done)

    def write(self, results: pa.Table) -> pa.Table:
        """Write one part from ``schema.RESULT`` rows; returns the manifest rows written.

        Rows whose id is already in the output are dropped (and counted): the exactly-once
        guarantee does not rest on Ray alone.
        """
        fresh = [doc_id not in self.done for doc_id in results.column("id").to_pylist()]
        if not all(fresh):
            self.duplicates += fresh.count(False)
            logger.warning("dropping %d rows already written", fresh.count(False))
            results = results.filter(pa.array(fresh))
        if results.num_rows == 0:
            return results.select(schema.MANIFEST.names)
        name = f"part-{self.next_part:06d}"
        self._atomic_parquet(entity_table(results), self.dirs["entities"] / f"{name}.parquet")
        if self.docbin:
            self._write_docbin(results, self.dirs["docs"] / f"{name}.spacy")
        manifest = results.select(schema.MANIFEST.names)
        self._atomic_parquet(manifest, self.dirs["manifest"] / f"{name}.parquet")  # commit
        self.done.update(manifest.column("id").to_pylist())
        self.next_part += 1
        return manifest

    def _parts(self, name: str) -> List[Path]:
        folder = self.dirs[name]
        return sorted(p for p in folder.iterdir() if PART.match(p.name)) if folder.is_dir() else []

    @staticmethod
    def _part_number(path: Path) -> int:
        match = PART.match(path.name)
        assert match is not None
        return int(match.group(1))

    @staticmethod
    def _atomic_parquet(table: pa.Table, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")  # hidden: dataset readers skip it
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    @staticmethod
    def _write_docbin(results: pa.Table, path: Path) -> None:
        """Merge the per-doc DocBins (arrays and strings only: no Doc is rebuilt here)."""
        merged = DocBin(store_user_data=True)
        for data in results.column("docbin").to_pylist():
            if data is not None:
                merged.merge(DocBin(store_user_data=True).from_bytes(data))
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(merged.to_bytes())
        os.replace(tmp, path)


def entity_table(results: pa.Table) -> pa.Table:
    """The nested ``entities`` column as one flat row per entity, keyed by doc id."""
    nested = results.column("entities").combine_chunks()
    parents = pc.list_parent_indices(nested)
    flat = pc.list_flatten(nested)
    columns = {"id": pc.take(results.column("id"), parents)}
    for field, _ in schema.ENTITY_FIELDS:
        columns[field] = pc.struct_field(flat, field)
    return pa.table(columns, schema=schema.ENTITIES)
