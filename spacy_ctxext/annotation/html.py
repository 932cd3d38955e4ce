"""The displaCy page of annotated docs: each entity's label carries its confidence ("PER 0.97")
where the span group has scores, and those below a threshold are outlined dashed.
"""

from __future__ import annotations

import html as html_lib
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy import displacy
from spacy.displacy.templates import TPL_FIGURE, TPL_PAGE
from spacy.tokens import Doc

from ..io_atomic import write_text
from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY
from .records import group_scores

LOW_CONFIDENCE = 0.5  # below it, an entity is outlined dashed on the page
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


def _confidence_params(label: str, confidence: Optional[float], low: float) -> Dict[str, str]:
    if confidence is None:
        return {"confidence": "", "tooltip": label, "low": ""}
    return {
        "confidence": f" {confidence:.2f}",
        "tooltip": f"{label}, confidence {confidence:.2f}",
        "low": LOW_STYLE if confidence < low else "",
    }


def displacy_doc(
    doc: Doc,
    doc_id: Any,
    spans_key: str = DEFAULT_SPANS_KEY,
    low_confidence: float = LOW_CONFIDENCE,
) -> Dict[str, Any]:
    """displaCy's manual-mode dict for ``doc`` (titled by its id), confidences in "params"."""
    confidences = group_scores(doc, spans_key) or {}
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
    write_text(path, page)  # atomically: never a partial page under its name
