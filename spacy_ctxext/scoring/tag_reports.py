"""Tag-level reports on IOB2 tags: seqeval's strict entity-level report (CoNLL-style exact
spans) and a token-level report (per-type P/R/F over tokens, the B/I prefix ignored).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Sequence

from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example

from ..decoding.bio import spans_to_tags

AVG_ROWS = ("micro avg", "macro avg", "weighted avg")


def iob2_tags(doc: Doc) -> List[str]:
    """IOB2 tags ("B-X", "I-X", "O") from ``doc.ents``; missing annotation counts as "O"."""
    return spans_to_tags(len(doc), [(e.start, e.end, e.label_) for e in doc.ents])


def aligned_iob2_tags(example: Example) -> List[str]:
    """IOB2 tags on the reference tokens of the predicted entities, mapped as spaCy's
    scorer maps them (a prediction whose edges fall inside a gold token is left out)."""
    spans = example.get_aligned_spans_x2y(example.predicted.ents)
    return spans_to_tags(len(example.reference), [(e.start, e.end, e.label_) for e in spans])


def _prf(tp: int, n_pred: int, n_true: int) -> Dict[str, float]:
    """seqeval's keys for spaCy's P/R/F of these counts."""
    score = PRFScore(tp=tp, fp=n_pred - tp, fn=n_true - tp)
    return {"precision": score.precision, "recall": score.recall, "f1-score": score.fscore}


def token_report(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """Per-type token-level P/R/F (B/I prefix ignored) with micro, macro and weighted avg."""
    true_c: Counter = Counter()
    pred_c: Counter = Counter()
    tp_c: Counter = Counter()
    for tags_true, tags_pred in zip(y_true, y_pred):
        if len(tags_true) != len(tags_pred):
            raise ValueError("gold and predicted docs differ in length")
        for t, p in zip(tags_true, tags_pred):
            t, p = t.split("-", 1)[-1], p.split("-", 1)[-1]
            true_c[t] += 1
            pred_c[p] += 1
            tp_c[t] += t == p
    labels = sorted((set(true_c) | set(pred_c)) - {"O"})
    report: Dict[str, dict] = {}
    for label in labels:
        report[label] = _prf(tp_c[label], pred_c[label], true_c[label])
        report[label]["support"] = true_c[label]
    support = sum(true_c[label] for label in labels)
    tp = sum(tp_c[label] for label in labels)
    report["micro avg"] = _prf(tp, sum(pred_c[label] for label in labels), support)
    report["micro avg"]["support"] = support
    for name in ("macro avg", "weighted avg"):
        weights = [1.0 if name == "macro avg" else true_c[label] for label in labels]
        total = sum(weights)
        report[name] = {
            key: sum(w * report[label][key] for w, label in zip(weights, labels)) / total
            if total
            else 0.0
            for key in ("precision", "recall", "f1-score")
        }
        report[name]["support"] = support
    return report


def format_report(report: dict, digits: int = 4) -> str:
    """Text table in the layout of sklearn's / seqeval's ``classification_report``."""
    width = max([len(name) for name in report] + [len(AVG_ROWS[-1]), digits])
    head = ("precision", "recall", "f1-score", "support")
    lines = [" " * width + " " + "".join(f"{h:>10}" for h in head), ""]
    labels = [name for name in report if name not in AVG_ROWS]
    avgs = [name for name in AVG_ROWS if name in report]
    for block in (labels, avgs):
        for name in block:
            row = report[name]
            values = "".join(f"{row[k]:>10.{digits}f}" for k in head[:3])
            lines.append(f"{name:>{width}} {values}{row['support']:>10}")
        lines.append("")
    return "\n".join(lines)


def _plain(obj: Any) -> Any:
    """Recursively turn numpy scalars into Python numbers, for JSON."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def seqeval_reports(y_true: List[List[str]], y_pred: List[List[str]]) -> Dict[str, Any]:
    """seqeval strict-IOB2 entity report (dict + text) and the token-level report."""
    kwargs = dict(mode="strict", scheme=IOB2, digits=4, zero_division=0)
    if any(tag != "O" for tags in y_true + y_pred for tag in tags):
        entity = _plain(classification_report(y_true, y_pred, output_dict=True, **kwargs))
        entity_text = classification_report(y_true, y_pred, **kwargs)
    else:  # seqeval cannot build a report without any entity at all
        entity, entity_text = {}, "(no entities in gold or predictions)\n"
    token = token_report(y_true, y_pred)
    return {
        "entity": entity,
        "entity_text": entity_text,
        "token": token,
        "token_text": format_report(token),
    }
