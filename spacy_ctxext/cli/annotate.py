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
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.tokens import DocBin
from tqdm import tqdm

from ..annotation.html import LOW_CONFIDENCE, displacy_doc, write_html
from ..annotation.inputs import scan_input
from ..annotation.records import doc_entities
from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY
from ..scoring.evaluate import load_pipeline

__all__ = ["annotate", "main"]


def annotate(
    model: Union[str, Path, Language],
    input_path: Union[str, Path],
    output_dir: Union[str, Path],
    *,
    batch_size: int = 8,
    gpu_id: int = -1,
    html: bool = False,
    n_html: int = 5,
    spans_key: str = DEFAULT_SPANS_KEY,
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
    parser.add_argument(
        "--spans-key", default=DEFAULT_SPANS_KEY, help="span group with confidences"
    )
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
