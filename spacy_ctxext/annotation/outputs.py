"""annotate's final outputs, assembled from the parts once every doc is in one:
``entities.jsonl`` (the parts' lines, in order), ``annotations.spacy`` (their DocBins
merged) and, if asked, ``entities.html`` (the first docs). Each is written atomically, so
a final name only ever holds a complete output.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List

from spacy.tokens import DocBin
from spacy.vocab import Vocab

from ..io_atomic import atomic_path, write_bytes
from .html import displacy_doc, write_html
from .parts import PartStore

__all__ = ["write_outputs"]


def write_outputs(
    store: PartStore,
    output_dir: Path,
    vocab: Vocab,
    *,
    html: bool,
    n_html: int,
    spans_key: str,
    low_confidence: float,
) -> None:
    """Write the final outputs from the parts, then remove the parts."""
    with atomic_path(output_dir / "entities.jsonl") as tmp:
        with tmp.open("wb") as out:
            for path in store.part_paths("entities"):
                with path.open("rb") as part:
                    shutil.copyfileobj(part, out)
    merged = DocBin(store_user_data=True)
    for path in store.part_paths("docs"):
        merged.merge(DocBin(store_user_data=True).from_bytes(path.read_bytes()))
    write_bytes(output_dir / "annotations.spacy", merged.to_bytes())
    if html:
        pages: List[Dict[str, Any]] = []
        for doc in merged.get_docs(vocab):
            if len(pages) >= n_html:
                break
            pages.append(displacy_doc(doc, doc.user_data["id"], spans_key, low_confidence))
        write_html(pages, output_dir / "entities.html", low_confidence)
    store.remove()
