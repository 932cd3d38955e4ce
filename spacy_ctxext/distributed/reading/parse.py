"""Input files to (id, text, meta, source, file_docs) rows, on the workers.

Ray Data's ``read_binary_files`` hands each file's bytes to ``parse_files`` in a read task:
a file is parsed whole, by one task, so that default ids can be line and row numbers and
bad input is reported with its file and line as ``spacy_ctxext.cli.annotate`` reports it
(JSONL is read by the same code, ``annotation.inputs.jsonl_objects``).

Ids: the record's ``id`` (JSONL key or Parquet column, as a string), else
- a single-file input: the JSONL line number or the Parquet row number from 1, as before;
- a multi-file input: ``SOURCE:N``, the file's path relative to the input folder and that
  number (``shards/a.jsonl:17``);
- a ``.txt`` file: its source (its name, in a flat folder, as before).
"""

import io
import json
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pyarrow as pa
import pyarrow.parquet as pq

from ...annotation.inputs import decode_text, jsonl_objects
from .. import schema
from .sources import InputError, relative

Parsed = Tuple[List[str], List[str], List[Optional[str]]]  # ids, texts, metas


def parse_files(
    batch: pa.Table,
    *,
    base: str,
    single: bool,
    done: Optional[Dict[str, Set[str]]] = None,
) -> Iterator[pa.Table]:
    """Ray Data UDF over ``read_binary_files(include_paths=True)`` rows: one table a file.

    ``done`` maps a source to the ids a previous run committed (a file it did in part);
    those rows are left out, and ``file_docs`` still counts every doc of the file.
    """
    for data, path in zip(batch.column("bytes").to_pylist(), batch.column("path").to_pylist()):
        source = relative(path, base)
        ids, texts, metas = parse_file(data, source, single)
        _check_unique(ids, source)
        skip = (done or {}).get(source, set())
        keep = [i for i, doc_id in enumerate(ids) if doc_id not in skip]
        yield pa.table(
            {
                "id": [ids[i] for i in keep],
                "text": [texts[i] for i in keep],
                "meta": [metas[i] for i in keep],
                "source": [source] * len(keep),
                "file_docs": [len(ids)] * len(keep),
                "file_bytes": [len(data)] * len(keep),
            },
            schema=schema.INPUT,
        )


def parse_ids(batch: pa.Table, *, base: str, single: bool) -> Iterator[pa.Table]:
    """Rows of the id check (``inputs.IDS``): every doc of every file, ``n_in`` 1."""
    for table in parse_files(batch, base=base, single=single):
        ones = pa.array([1] * table.num_rows, pa.int64())
        zeros = pa.array([0] * table.num_rows, pa.int64())
        nulls = pa.nulls(table.num_rows, pa.string())
        yield pa.table(
            [table.column("id"), table.column("source"), nulls, ones, zeros],
            names=["id", "source", "done_source", "n_in", "n_done"],
        )


def parse_file(data: bytes, source: str, single: bool) -> Parsed:
    """One file's docs by its suffix; ``InputError`` naming the file if it is malformed."""
    try:
        if source.endswith(".jsonl"):
            return _jsonl(data, source, single)
        if source.endswith(".parquet"):
            return _parquet(data, source, single)
        return [source], [decode_text(data, source)], [None]
    except InputError:
        raise
    except ValueError as err:  # the shared JSONL / text checks raise ValueError
        raise InputError(str(err)) from None


def _default_id(number: int, source: str, single: bool) -> str:
    return str(number) if single else f"{source}:{number}"


def _jsonl(data: bytes, source: str, single: bool) -> Parsed:
    ids, texts, metas = [], [], []
    for lineno, record in jsonl_objects(io.BytesIO(data), source):
        ids.append(str(record["id"]) if "id" in record else _default_id(lineno, source, single))
        texts.append(record["text"])
        metas.append(_as_json(record["meta"]) if "meta" in record else None)
    if not ids:
        raise InputError(f"{source}: no documents found")
    return ids, texts, metas


def _parquet(data: bytes, source: str, single: bool) -> Parsed:
    """A "text" column, optional "id" (default: the row number from 1) and "meta"."""
    try:
        table = pq.read_table(pa.BufferReader(data))
    except pa.ArrowInvalid as err:
        raise InputError(f"{source}: not a readable Parquet file ({err})") from None
    names = table.column_names
    if "text" not in names:
        raise InputError(f'{source}: no "text" column (columns: {names})')
    if table.num_rows == 0:
        raise InputError(f"{source}: no documents found")
    texts = table.column("text").to_pylist()
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise InputError(f"{source}: row {bad + 1}: text is not a string ({texts[bad]!r})")
    if "id" in names:
        ids = [str(x) for x in table.column("id").to_pylist()]
    else:
        ids = [_default_id(row, source, single) for row in range(1, table.num_rows + 1)]
    if "meta" in names:
        metas = [_as_json(m) for m in table.column("meta").to_pylist()]
    else:
        metas = [None] * table.num_rows
    return ids, texts, metas


def _as_json(value: Any) -> Optional[str]:
    """Meta of any type as one string column: parts of one output must share a schema."""
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _check_unique(ids: List[str], source: str) -> None:
    """Within one file, here; across files, ``inputs.check_unique`` (a Ray Data groupby)."""
    seen: Set[str] = set()
    dupes = []
    for doc_id in ids:
        if doc_id in seen:
            dupes.append(doc_id)
        seen.add(doc_id)
    if dupes:
        raise InputError(
            f"{source}: {len(dupes)} duplicate ids (docs that repeat an earlier doc's id), "
            f"e.g. {dupes[:5]}: give "
            "each doc its own id (resume and the exactly-once check key on ids)"
        )
