"""The entity record both command lines write (``annotate``'s JSONL, the Ray output's
``entities``): ``doc.ents`` as dicts, each with the score ctx_ner keeps in
``doc.spans[spans_key].attrs["scores"]``. One record, one name for the number: "score",
as in the span group's ``attrs["scores"]``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from spacy.tokens import Doc

from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY


def group_scores(doc: Doc, spans_key: str) -> Optional[Dict[Tuple[int, int, str], float]]:
    """Score per entity from ``doc.spans[spans_key].attrs["scores"]``.

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
    """``doc.ents`` as records; "score" is None when the pipeline keeps no scores (a
    pipeline without ctx_ner, or one whose entities were changed after it ran)."""
    scores = group_scores(doc, spans_key)
    return [
        {
            "start_char": ent.start_char,
            "end_char": ent.end_char,
            "label": ent.label_,
            "text": ent.text,
            "score": None if scores is None else scores[(ent.start, ent.end, ent.label_)],
        }
        for ent in doc.ents
    ]
