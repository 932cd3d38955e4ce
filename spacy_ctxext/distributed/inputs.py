"""Read a corpus into one Arrow table of (id, text, meta) rows.

JSONL and folders of ``.txt`` go through ``spacy_ctxext.annotation.inputs.read_input``, so both
commands accept the same files, give the same default ids and fail on the same input;
Parquet is read here. Ids become strings and must be unique: resume and the exactly-once
check key on them.
"""

import json
from pathlib import Path
from typing import Any, Iterable, List, Optional, Union

import pyarrow as pa
import pyarrow.parquet as pq

from ..annotation.inputs import read_input
from . import schema


def read_corpus(path: Union[str, Path]) -> pa.Table:
    """The whole input as a table with the ``schema.INPUT`` columns, validated."""
    path = Path(path)
    if path.suffix == ".parquet" and path.is_file():
        table = _parquet_corpus(path)
    elif path.is_dir() or (path.suffix == ".jsonl" and path.is_file()):
        _, records = read_input(path)
        ids, texts = [], []
        for doc_id, text in records:
            ids.append(str(doc_id))
            texts.append(text)
        meta = _jsonl_meta(path) if path.suffix == ".jsonl" else [None] * len(ids)
        table = pa.table({"id": ids, "text": texts, "meta": meta}, schema=schema.INPUT)
    else:
        raise ValueError(f"{path}: expected a .jsonl or .parquet file, or a folder of .txt files")
    _check_unique(table.column("id").to_pylist(), path)
    return table


def _jsonl_meta(path: Path) -> List[Optional[str]]:
    """The "meta" value of each record (as JSON), in read_input's order: non-blank lines."""
    with path.open(encoding="utf8") as f:
        records = (json.loads(line) for line in f if line.strip())
        return [_as_json(r["meta"]) if "meta" in r else None for r in records]


def _parquet_corpus(path: Path) -> pa.Table:
    """A "text" column, optional "id" (default: the row number from 1) and "meta"."""
    names = pq.read_schema(path).names
    if "text" not in names:
        raise ValueError(f'{path}: no "text" column (columns: {names})')
    table = pq.read_table(path, columns=[c for c in ("id", "text", "meta") if c in names])
    if table.num_rows == 0:
        raise ValueError(f"{path}: no documents found")
    texts = table.column("text").to_pylist()
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValueError(f"{path}: row {bad + 1}: text is not a string ({texts[bad]!r})")
    if "id" in names:
        ids = [str(x) for x in table.column("id").to_pylist()]
    else:
        ids = [str(i) for i in range(1, table.num_rows + 1)]
    if "meta" in names:
        meta = [_as_json(m) for m in table.column("meta").to_pylist()]
    else:
        meta = [None] * table.num_rows
    return pa.table({"id": ids, "text": texts, "meta": meta}, schema=schema.INPUT)


def _as_json(value: Any) -> Optional[str]:
    """Meta of any type as one string column: shards of one output must share a schema."""
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _check_unique(ids: Iterable[str], path: Path) -> None:
    """Duplicate ids would make "already done" and "written once" ambiguous."""
    seen, dupes = set(), []
    for doc_id in ids:
        if doc_id in seen:
            dupes.append(doc_id)
        seen.add(doc_id)
    if dupes:
        raise ValueError(f"{path}: {len(dupes)} duplicate ids, e.g. {dupes[:5]}")
