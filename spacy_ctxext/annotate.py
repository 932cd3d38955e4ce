"""Annotate raw text with any spaCy pipeline that sets ``doc.ents``.

Input is a folder of ``.txt`` files (one doc per file) or a ``.jsonl`` file with
``{"text": ..., "id": ...}`` per line ("id" optional, default: the line number).
Writes ``annotations.spacy`` (DocBin), ``entities.jsonl`` and, with ``--html``,
``entities.html`` (displaCy) into the output folder.

    python -m spacy_ctxext.annotate MODEL INPUT OUTPUT_DIR [--html]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from .evaluate import load_pipeline

Record = Tuple[Any, str]  # (doc id, text)


def _jsonl_records(path: Path) -> Iterator[Tuple[int, Any, str]]:
    """(line number, id, text) per non-blank line; ValueError naming the line if malformed."""
    with path.open(encoding="utf8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {lineno}: invalid JSON ({err.msg})") from err
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f'{path}: line {lineno}: expected an object with a "text" string')
            yield lineno, record.get("id", lineno), record["text"]


def _txt_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".txt" and p.is_file())


def _txt_text(path: Path) -> str:
    """The file's text as written: CRLF is kept, so character offsets match the file."""
    try:
        with path.open(encoding="utf8", newline="") as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}: not UTF-8 ({err.reason} at byte {err.start}); re-encode it as UTF-8"
        ) from err


def read_input(input_path: Union[str, Path]) -> Tuple[int, Iterator[Record]]:
    """Validate and count the input, then return (n_docs, lazy iterator of (id, text))."""
    path = Path(input_path)
    if path.is_dir():
        files = _txt_files(path)
        n_docs = len(files)
        for file in files:
            _txt_text(file)  # full pass: fail before any model work
        records: Iterator[Record] = ((p.name, _txt_text(p)) for p in files)
    elif path.suffix == ".jsonl" and path.is_file():
        n_docs = sum(1 for _ in _jsonl_records(path))  # full pass: fail before any model work
        records = ((doc_id, text) for _, doc_id, text in _jsonl_records(path))
    else:
        raise ValueError(f"{path}: expected a folder of .txt files or a .jsonl file")
    if n_docs == 0:
        raise ValueError(f"{path}: no documents found")
    return n_docs, records


def group_confidences(doc: Doc, spans_key: str) -> Optional[Dict[Tuple[int, int, str], float]]:
    """Confidence per entity from ``doc.spans[spans_key].attrs["scores"]``.

    None unless the group exists, has one score per span, and holds exactly ``doc.ents``.
    """
    if spans_key not in doc.spans:
        return None
    group = doc.spans[spans_key]
    scores = group.attrs.get("scores")
    if scores is None or len(scores) != len(group):
        return None
    by_span = {(s.start, s.end, s.label_): float(x) for s, x in zip(group, scores)}
    if set(by_span) != {(e.start, e.end, e.label_) for e in doc.ents}:
        return None
    return by_span


def doc_entities(doc: Doc, spans_key: str = "ctx_ner") -> List[Dict[str, Any]]:
    """``doc.ents`` as dicts, with "confidence" when the span group provides it."""
    confidences = group_confidences(doc, spans_key)
    entities = []
    for ent in doc.ents:
        entity = {
            "text": ent.text,
            "label": ent.label_,
            "start_char": ent.start_char,
            "end_char": ent.end_char,
        }
        if confidences is not None:
            entity["confidence"] = confidences[(ent.start, ent.end, ent.label_)]
        entities.append(entity)
    return entities


def write_html(docs: List[Doc], path: Path) -> None:
    """displaCy entity page; each doc headed by its id."""
    for doc in docs:  # already serialised into the DocBin, so the title stays out of it
        doc.user_data["title"] = str(doc.user_data.get("id", ""))
    with warnings.catch_warnings():  # W006: a doc without entities is normal here
        warnings.filterwarnings("ignore", message=r"\[W006\]")
        html = displacy.render(docs, style="ent", page=True, jupyter=False)
    path.write_text(html, encoding="utf8")


def annotate(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    batch_size: int = 8,
    gpu_id: int = -1,
    html: bool = False,
    n_html: int = 5,
    spans_key: str = "ctx_ner",
) -> Dict[str, Any]:
    """Run ``model`` over the input and write the annotations; returns counts and timing."""
    n_docs, records = read_input(input_path)
    nlp = load_pipeline(model, gpu_id)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc_bin = DocBin(store_user_data=True)
    html_docs: List[Doc] = []
    counts = {"docs": 0, "entities": 0}
    start = time.perf_counter()
    pairs = ((text, doc_id) for doc_id, text in records)
    docs = nlp.pipe(pairs, batch_size=batch_size, as_tuples=True)
    with (out / "entities.jsonl").open("w", encoding="utf8") as f:
        for doc, doc_id in tqdm(docs, total=n_docs, desc="annotate", unit="doc"):
            doc.user_data["id"] = doc_id
            entities = doc_entities(doc, spans_key)
            f.write(json.dumps({"id": doc_id, "entities": entities}, ensure_ascii=False) + "\n")
            doc_bin.add(doc)
            if html and len(html_docs) < n_html:
                html_docs.append(doc)
            counts["docs"] += 1
            counts["entities"] += len(entities)
    doc_bin.to_disk(out / "annotations.spacy")
    if html:
        write_html(html_docs, out / "entities.html")
    return {**counts, "seconds": time.perf_counter() - start}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.annotate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("model", help="pipeline name or path (spacy.load)")
    parser.add_argument("input", help="folder of .txt files, or a .jsonl file")
    parser.add_argument("output_dir", help="folder for annotations.spacy, entities.jsonl(.html)")
    parser.add_argument("--html", action="store_true", help="also write entities.html")
    parser.add_argument("--n-html", type=int, default=5, help="docs in the HTML page")
    parser.add_argument("--batch-size", "-b", type=int, default=8)
    parser.add_argument("--gpu-id", "-g", type=int, default=-1)
    parser.add_argument("--spans-key", default="ctx_ner", help="span group with confidences")
    args = parser.parse_args(argv)
    result = annotate(
        args.model,
        args.input,
        args.output_dir,
        batch_size=args.batch_size,
        gpu_id=args.gpu_id,
        html=args.html,
        n_html=args.n_html,
        spans_key=args.spans_key,
    )
    print(
        f"{result['docs']} docs, {result['entities']} entities in {result['seconds']:.1f}s "
        f"-> {args.output_dir}"
    )
    return result


if __name__ == "__main__":
    main()
