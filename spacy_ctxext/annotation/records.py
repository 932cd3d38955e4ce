"""Entity records as annotation writes them: ``doc.ents`` as dicts, each with the confidence
that ctx_ner keeps in ``doc.spans[spans_key].attrs["scores"]``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from spacy.tokens import Doc

from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY


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


def doc_entities(doc: Doc, spans_key: str = DEFAULT_SPANS_KEY) -> List[Dict[str, Any]]:
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
