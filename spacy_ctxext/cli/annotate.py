"""Annotate raw text with any spaCy pipeline that sets ``doc.ents``.

Input is a folder of ``.txt`` files (one doc per file) or a ``.jsonl`` file with
``{"text": ..., "id": ...}`` per line ("id" optional, default: the line number).
Writes ``annotations.spacy`` (DocBin), ``entities.jsonl`` and, with ``--html``,
``entities.html`` (displaCy) into the output folder. On the page each entity's label carries
its confidence ("PER 0.97") where the span group has scores; those below ``--low-confidence``
are outlined dashed. ``nlp.max_length`` is raised to the longest input text (spaCy's E088).

    python -m spacy_ctxext.annotate MODEL INPUT OUTPUT_DIR [--html]
"""

from __future__ import annotations

import argparse
import html as html_lib
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy import displacy
from spacy.displacy.templates import TPL_FIGURE, TPL_PAGE
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from ..scoring.evaluate import load_pipeline

__all__ = [
    "annotate",
    "doc_entities",
    "group_confidences",
    "main",
    "read_input",
]

Record = Tuple[Any, str]  # (doc id, text)
LOW_CONFIDENCE = 0.5
# displaCy's entity template, plus a hover title, the confidence after the label and a dashed
# outline for low confidence (filled from each entity's "params").
ENT_TEMPLATE = """
<mark class="entity" title="{tooltip}" style="background: {bg}; padding: 0.45em 0.6em; \
margin: 0 0.25em; line-height: 1; border-radius: 0.35em;{low}">
    {text}
    <span style="font-size: 0.8em; font-weight: bold; line-height: 1; border-radius: 0.35em; \
vertical-align: middle; margin-left: 0.5rem">{label}{kb_link}{confidence}</span>
</mark>
"""
LOW_STYLE = " outline: 2px dashed #555; opacity: 0.6;"
LABEL_COLORS = {"PER": "#aa9cfc", "MISC": "#c887fb"}  # CoNLL's names; displaCy colours PERSON, NORP


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


def scan_input(input_path: Union[str, Path]) -> Tuple[int, int, Iterator[Record]]:
    """Validate the input in one full pass (fail before any model work), then return
    (n_docs, characters in the longest text, lazy iterator of (id, text))."""
    path = Path(input_path)
    if path.is_dir():
        files = _txt_files(path)
        lengths = [len(_txt_text(file)) for file in files]
        records: Iterator[Record] = ((p.name, _txt_text(p)) for p in files)
    elif path.suffix == ".jsonl" and path.is_file():
        lengths = [len(text) for _, _, text in _jsonl_records(path)]
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


def _confidence_params(label: str, confidence: Optional[float], low: float) -> Dict[str, str]:
    if confidence is None:
        return {"confidence": "", "tooltip": label, "low": ""}
    return {
        "confidence": f" {confidence:.2f}",
        "tooltip": f"{label}, confidence {confidence:.2f}",
        "low": LOW_STYLE if confidence < low else "",
    }


def displacy_doc(
    doc: Doc, doc_id: Any, spans_key: str = "ctx_ner", low_confidence: float = LOW_CONFIDENCE
) -> Dict[str, Any]:
    """displaCy's manual-mode dict for ``doc`` (titled by its id), confidences in "params"."""
    confidences = group_confidences(doc, spans_key) or {}
    ents = [
        {
            "start": ent.start_char,
            "end": ent.end_char,
            "label": ent.label_,
            "params": _confidence_params(
                ent.label_, confidences.get((ent.start, ent.end, ent.label_)), low_confidence
            ),
        }
        for ent in doc.ents
    ]
    settings = {"lang": doc.lang_, "direction": doc.vocab.writing_system.get("direction", "ltr")}
    title = html_lib.escape(str(doc_id))
    return {"text": doc.text, "ents": ents, "title": title, "settings": settings}


def write_html(pages: List[Dict[str, Any]], path: Path, low_confidence: float) -> None:
    """displaCy entity page of ``displacy_doc`` dicts, with a line on how to read it."""
    options = {"template": ENT_TEMPLATE, "colors": LABEL_COLORS}
    figures = "".join(
        TPL_FIGURE.format(content=displacy.render(page, "ent", manual=True, options=options))
        for page in pages
    )
    legend = (
        '<p style="font-family: sans-serif">Each label is followed by the entity\'s confidence '
        f"where the pipeline gives one; below {low_confidence:g} the entity is outlined dashed "
        "and faded. Hover over an entity for its label and confidence.</p>"
    )
    settings = pages[0]["settings"] if pages else {"lang": "en", "direction": "ltr"}
    lang, direction = settings["lang"], settings["direction"]
    page = TPL_PAGE.format(content=legend + figures, lang=lang, dir=direction)
    path.write_text(page, encoding="utf8")


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
    low_confidence: float = LOW_CONFIDENCE,
) -> Dict[str, Any]:
    """Run ``model`` over the input and write the annotations; returns counts and timing.

    Raises ``nlp.max_length`` (never lowers it) to the longest text, so no input hits E088.
    The pipeline runs as saved, as ``spacy.load(model)(text)`` runs it: a pipeline that
    windows sentences ships what sets their starts (issue #21).
    """
    n_docs, longest, records = scan_input(input_path)
    nlp = load_pipeline(model, gpu_id)
    nlp.max_length = max(nlp.max_length, longest)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc_bin = DocBin(store_user_data=True)
    html_pages: List[Dict[str, Any]] = []
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
            if html and len(html_pages) < n_html:
                html_pages.append(displacy_doc(doc, doc_id, spans_key, low_confidence))
            counts["docs"] += 1
            counts["entities"] += len(entities)
    doc_bin.to_disk(out / "annotations.spacy")
    if html:
        write_html(html_pages, out / "entities.html", low_confidence)
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
    parser.add_argument(
        "--low-confidence",
        type=float,
        default=LOW_CONFIDENCE,
        help="on the HTML page, outline entities whose confidence is below this",
    )
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
        low_confidence=args.low_confidence,
    )
    print(
        f"{result['docs']} docs, {result['entities']} entities in {result['seconds']:.1f}s "
        f"-> {args.output_dir}"
    )
    return result


if __name__ == "__main__":
    main()
