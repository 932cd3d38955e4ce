"""The inputs of annotation: a ``.jsonl`` file with ``{"text": ..., "id": ...}`` per line ("id"
optional, default: the line number) or a folder of ``.txt`` files (one doc per file),
checked and counted before any text reaches a pipeline.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Tuple, Union

Record = Tuple[Any, str]  # (doc id, text)


def _jsonl_records(path: Path) -> Iterator[Tuple[int, Any, str]]:
    """(line number, id, text) per non-blank line; ValueError naming the line if malformed."""
    with path.open("rb") as f:
        for lineno, record in jsonl_objects(f, path):
            yield lineno, record.get("id", lineno), record["text"]


def jsonl_objects(raw_lines: Iterable[bytes], name: Any) -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(line number, record) per non-blank line of a JSONL file read as bytes lines; a
    ValueError naming ``name`` and the line if one is malformed. Shared with the Ray path
    (``distributed.reading.parse``), so both read the same files the same way."""
    for lineno, raw in enumerate(raw_lines, start=1):
        line = _utf8_line(raw, name, lineno)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}: line {lineno}: invalid JSON ({err.msg})") from err
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f'{name}: line {lineno}: expected an object with a "text" string')
        yield lineno, record


def _utf8_line(raw: bytes, path: Any, lineno: int) -> str:
    try:
        return raw.decode("utf8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}: line {lineno}: not UTF-8 ({err.reason} at byte {err.start} of the line); "
            "re-encode the file as UTF-8"
        ) from None


class DuplicateIdWarning(UserWarning):
    """Some docs of a JSONL input share an id."""


def _warn_duplicate_ids(path: Path, lines_and_ids: List[Tuple[int, Any]]) -> None:
    """Annotate keeps every doc (resume goes by position); the Ray path refuses them."""
    first_line: Dict[str, int] = {}
    duplicates = []
    for lineno, doc_id in lines_and_ids:
        if str(doc_id) in first_line:
            duplicates.append((lineno, doc_id, first_line[str(doc_id)]))
        first_line.setdefault(str(doc_id), lineno)
    if duplicates:
        lineno, doc_id, first = duplicates[0]
        warnings.warn(
            f"{path}: {len(duplicates)} docs repeat an earlier doc's id (first: line {lineno}, "
            f"id {doc_id!r} as on line {first}); all are annotated, under the ids given. Give "
            "each doc its own id to tell them apart (python -m spacy_ctxext.distributed "
            "refuses duplicates).",
            DuplicateIdWarning,
            stacklevel=3,
        )


def _txt_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file())


def _txt_text(path: Path) -> str:
    """The file's text as written: CRLF is kept, so character offsets match the file."""
    return decode_text(path.read_bytes(), path)


def decode_text(data: bytes, name: Any) -> str:
    """A ``.txt`` doc's bytes as text, undecoded newlines kept; ValueError if not UTF-8."""
    try:
        return data.decode("utf8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{name}: not UTF-8 ({err.reason} at byte {err.start}); re-encode it as UTF-8"
        ) from None


def scan_input(input_path: Union[str, Path]) -> Tuple[int, int, Iterator[Record]]:
    """Validate the input in one full pass (fail before any model work), then return
    (n_docs, characters in the longest text, lazy iterator of (id, text))."""
    path = Path(input_path)
    if path.is_dir():
        files = _txt_files(path)
        lengths = [len(_txt_text(file)) for file in files]
        records: Iterator[Record] = ((p.name, _txt_text(p)) for p in files)
    elif path.suffix == ".jsonl" and path.is_file():
        scanned = [(lineno, doc_id, len(text)) for lineno, doc_id, text in _jsonl_records(path)]
        _warn_duplicate_ids(path, [(lineno, doc_id) for lineno, doc_id, _ in scanned])
        lengths = [length for _, _, length in scanned]
        records = ((doc_id, text) for _, doc_id, text in _jsonl_records(path))
    else:
        raise ValueError(f"{path}: expected a folder of .txt files or a .jsonl file")
    if not lengths:
        raise ValueError(f"{path}: no documents found")
    return len(lengths), max(lengths), records


def read_input(input_path: Union[str, Path]) -> Tuple[int, Iterator[Record]]:
    """Validate and count the input, then return (n_docs, lazy iterator of (id, text))."""
    n_docs, _, records = scan_input(input_path)
    return n_docs, records
