"""Evaluate any spaCy pipeline that sets ``doc.ents`` against a gold ``.spacy`` DocBin.

Reports spaCy's own scorer (``ents_p/r/f``, ``ents_per_type``), the seqeval entity-level
report (strict IOB2, i.e. CoNLL-style exact-span matching) and a token-level report
(per-type P/R/F over tokens, ignoring the B/I prefix).

    python -m spacy_ctxext.evaluate MODEL DATA.spacy --output metrics/NAME.json
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import spacy
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from .bio import spans_to_tags
from .consistency import entity_consistency
from .gazetteer import entity_labels, read_docs, unseen_scores
from .readers import unannotated_copy

__all__ = [
    "load_pipeline",
    "evaluate_pipeline",
    "iob2_tags",
    "token_report",
    "format_report",
    "main",
]

AVG_ROWS = ("micro avg", "macro avg", "weighted avg")


class _KeepingScorer(Scorer):
    """spaCy's default scorer that also keeps the annotated examples.

    ``Language.evaluate`` copies the examples before running the pipeline, so this is
    the only way to see the predicted docs without running the pipeline a second time.
    """

    def __init__(self, nlp: Optional[Language] = None, **cfg: Any) -> None:
        super().__init__(nlp, **cfg)
        self.examples: List[Example] = []

    def score(self, examples: Iterable[Example], *, per_component: bool = False) -> Dict[str, Any]:
        self.examples = list(examples)
        return super().score(self.examples, per_component=per_component)


def load_pipeline(model: Union[str, Path, Language], gpu_id: int = -1) -> Language:
    """Return ``model`` if it is already a pipeline, else ``spacy.load`` it (on GPU if asked)."""
    if isinstance(model, Language):
        return model
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)


def iob2_tags(doc: Doc) -> List[str]:
    """IOB2 tags ("B-X", "I-X", "O") from ``doc.ents``; missing annotation counts as "O"."""
    return spans_to_tags(len(doc), [(e.start, e.end, e.label_) for e in doc.ents])


def _prf(tp: int, n_pred: int, n_true: int) -> Dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1-score": f}


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


def evaluate_pipeline(
    model: Union[str, Path, Language],
    data_path: Union[str, Path],
    *,
    batch_size: int = 8,
    gpu_id: int = -1,
    seen: Optional[Union[str, Path]] = None,
) -> Dict[str, Any]:
    """Score ``model`` on the gold docs in ``data_path`` (a DocBin); JSON-serialisable result.

    seen: a training DocBin; adds ``unseen``, the scores on entities whose string is not
        one of its entities' (see ``spacy_ctxext.gazetteer.unseen_scores``).
    """
    nlp = load_pipeline(model, gpu_id)
    golds = list(DocBin().from_disk(data_path).get_docs(nlp.vocab))
    if not golds:
        raise ValueError(f"no documents in {data_path}")
    examples = [Example(unannotated_copy(nlp, gold), gold) for gold in golds]
    scorer = _KeepingScorer(nlp)
    scores = nlp.evaluate(examples, batch_size=batch_size, scorer=scorer)
    if scores.get("ents_f") is None:  # no component with an NER scorer: score doc.ents anyway
        scores.update(get_ner_prf(scorer.examples))
    # As spaCy's scorer does, gold docs without entity annotation are not scored.
    annotated = [eg for eg in scorer.examples if eg.reference.has_annotation("ENT_IOB")]
    if not annotated:
        raise ValueError(f"no document in {data_path} has entity annotation to score against")
    if len(annotated) < len(golds):
        warnings.warn(
            f"{data_path}: {len(golds) - len(annotated)} of {len(golds)} docs have no entity "
            "annotation and are not scored (spaCy's scorer skips them too)",
            stacklevel=2,
        )
    y_true = [iob2_tags(eg.reference) for eg in annotated]
    y_pred = [iob2_tags(eg.predicted) for eg in annotated]
    unseen = {} if seen is None else {"unseen": unseen_scores(annotated, _strings(seen))}
    return {
        "spacy": _plain(scores),
        "seqeval": seqeval_reports(y_true, y_pred),
        "consistency": entity_consistency(annotated),
        **unseen,
        "docs": len(golds),
        "docs_scored": len(annotated),
        "tokens": sum(len(gold) for gold in golds),
        "words_per_second": float(scores.get("speed", 0.0)),
    }


def _strings(path: Union[str, Path]) -> set:
    strings = set(entity_labels(read_docs(Path(path))))
    if not strings:
        raise ValueError(f"--seen {path}: no entities in it, so every entity would be unseen")
    return strings


def format_spacy_scores(scores: Dict[str, Any]) -> str:
    """ents_p/r/f and the per-type table of spaCy's scorer, as percentages."""

    def pct(value: Optional[float]) -> str:
        return f"{100 * value:>8.2f}" if value is not None else f"{'-':>8}"

    per_type = scores.get("ents_per_type") or {}
    width = max([len(label) for label in per_type] + [len("ALL")])
    lines = [f"{'':<{width}} {'P':>8}{'R':>8}{'F':>8}"]
    for label in sorted(per_type):
        row = per_type[label]
        lines.append(f"{label:<{width}} {pct(row['p'])}{pct(row['r'])}{pct(row['f'])}")
    all_row = (scores.get("ents_p"), scores.get("ents_r"), scores.get("ents_f"))
    lines.append(f"{'ALL':<{width}} " + "".join(pct(v) for v in all_row))
    return "\n".join(lines) + "\n"


def format_results(result: Dict[str, Any]) -> str:
    """The full text report printed by the CLI and written beside the JSON."""
    return "\n".join(
        [
            f"docs: {result['docs']}  tokens: {result['tokens']}  "
            f"words/s: {result['words_per_second']:.1f}",
            "",
            "== spaCy scorer (ents, %) ==",
            format_spacy_scores(result["spacy"]),
            "== seqeval entity-level (strict, IOB2) ==",
            result["seqeval"]["entity_text"],
            "== token-level (B/I prefix ignored) ==",
            result["seqeval"]["token_text"],
            _format_consistency(result.get("consistency")),
            _format_unseen(result.get("unseen")),
        ]
    )


def _format_consistency(consistency: Optional[Dict[str, float]]) -> str:
    if not consistency:
        return ""
    return (
        "== consistency (gold strings occurring 2+ times in a doc) ==\n"
        f"labelled alike in all occurrences: {100 * consistency['consistency']:.2f}%  "
        f"alike and correct: {100 * consistency['consistent_correct']:.2f}%  "
        f"strings: {int(consistency['repeated'])}\n"
    )


def _format_unseen(unseen: Optional[Dict[str, float]]) -> str:
    if not unseen:
        return ""
    return (
        "== entities whose string is unseen in training ==\n"
        f"P {100 * unseen['ents_p']:.2f}  R {100 * unseen['ents_r']:.2f}  "
        f"F {100 * unseen['ents_f']:.2f}  gold: {int(unseen['gold'])}  "
        f"predicted: {int(unseen['predicted'])}\n"
    )


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_ctxext.evaluate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("model", help="pipeline name or path (spacy.load)")
    parser.add_argument("data", help="gold .spacy DocBin")
    parser.add_argument("--output", "-o", help="JSON file to write; text report goes to .txt")
    parser.add_argument("--gpu-id", "-g", type=int, default=-1)
    parser.add_argument("--batch-size", "-b", type=int, default=8)
    parser.add_argument("--seen", help="training .spacy: also score entities unseen in it")
    args = parser.parse_args(argv)
    if args.output and Path(args.output).suffix == ".txt":
        parser.error("--output is the JSON file; the .txt report is written beside it")
    result = evaluate_pipeline(
        args.model, args.data, batch_size=args.batch_size, gpu_id=args.gpu_id, seen=args.seen
    )
    text = format_results(result)
    print(text)
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
        output.with_suffix(".txt").write_text(text, encoding="utf8")
        print(f"wrote {output} and {output.with_suffix('.txt')}")
    return result


if __name__ == "__main__":
    main()
