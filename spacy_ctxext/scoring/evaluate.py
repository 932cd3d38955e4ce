"""Evaluate any spaCy pipeline that sets ``doc.ents`` against a gold ``.spacy`` DocBin.

Scored first as users run it: each gold doc's **text** goes through the whole pipeline,
its own tokenizer included, and is aligned to the gold doc by spaCy's ``Example``, as
``spacy evaluate`` (no flags) and ``nlp(text)`` do (``raw_text``). Beside it, labelled:
the gold tokens without sentence starts (``gold_tokens``) and with the gold sentence
starts (``gold_sentences``), which no user's text has. For each: spaCy's own scorer
(``ents_p/r/f``, ``ents_per_type``), the seqeval entity-level report (strict IOB2, i.e.
CoNLL-style exact-span matching), a token-level report (per-type P/R/F over tokens,
ignoring the B/I prefix), label consistency, unseen-entity scores and entity P/R/F by
where an entity stands in its document (``spacy_ctxext.scoring.breakdown``).

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
from spacy.training import Corpus, Example

from ..decoding.bio import spans_to_tags
from ..training.gazetteer import entity_labels, read_docs, unseen_scores
from ..training.readers import unannotated_copy
from .breakdown import entity_breakdown
from .consistency import entity_consistency

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


def aligned_iob2_tags(example: Example) -> List[str]:
    """IOB2 tags on the reference tokens of the predicted entities, mapped as spaCy's
    scorer maps them (a prediction whose edges fall inside a gold token is left out)."""
    spans = example.get_aligned_spans_x2y(example.predicted.ents)
    return spans_to_tags(len(example.reference), [(e.start, e.end, e.label_) for e in spans])


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


PROTOCOLS = {
    "raw_text": "each doc's text, tokenized and annotated by the whole pipeline "
    "(as `spacy evaluate` without flags and `nlp(text)`)",
    "gold_tokens": "the gold tokens, no sentence starts",
    "gold_sentences": "the gold tokens and gold sentence starts (the study's protocol before #21)",
}
PRIMARY_PROTOCOL = "raw_text"


def protocol_examples(nlp: Language, data_path: Union[str, Path], protocol: str) -> List[Example]:
    """The gold docs of ``data_path`` paired with what ``protocol`` gives the pipeline.

    ``raw_text`` is spaCy's own ``Corpus`` (``gold_preproc = False``), the examples that
    ``spacy evaluate`` and ``spacy train``'s dev set build: ``nlp.make_doc(doc.text)``.
    """
    if protocol == "raw_text":
        return list(Corpus(data_path, gold_preproc=False)(nlp))
    golds = DocBin().from_disk(data_path).get_docs(nlp.vocab)
    if protocol == "gold_sentences":
        return [Example(unannotated_copy(nlp, gold), gold) for gold in golds]
    if protocol == "gold_tokens":
        return [Example(unannotated_copy(nlp, gold, sentences=False), gold) for gold in golds]
    raise ValueError(f"unknown protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")


def evaluate_pipeline(
    model: Union[str, Path, Language],
    data_path: Union[str, Path],
    *,
    batch_size: int = 8,
    gpu_id: int = -1,
    seen: Optional[Union[str, Path]] = None,
    protocols: Sequence[str] = tuple(PROTOCOLS),
) -> Dict[str, Any]:
    """Score ``model`` on the gold docs in ``data_path`` (a DocBin); JSON-serialisable result.

    The first of ``protocols`` (raw text by default) gives the top-level scores, labelled
    by ``protocol``; the others are under ``other_protocols``, each with the same keys.
    seen: a training DocBin; adds ``unseen``, the scores on entities whose string is not
        one of its entities' (see ``spacy_ctxext.training.gazetteer.unseen_scores``).
    """
    if not protocols:
        raise ValueError("no protocol to score: give at least one of " + ", ".join(PROTOCOLS))
    nlp = load_pipeline(model, gpu_id)
    strings = None if seen is None else _strings(seen)
    scored = {
        protocol: score_examples(
            nlp, protocol_examples(nlp, data_path, protocol), data_path, batch_size, strings
        )
        for protocol in protocols
    }
    primary = scored.pop(protocols[0])
    return {"protocol": protocols[0], **primary, "other_protocols": scored}


def score_examples(
    nlp: Language,
    examples: List[Example],
    data_path: Union[str, Path],
    batch_size: int,
    seen: Optional[set],
) -> Dict[str, Any]:
    """Run the pipeline over ``examples`` and score its entities every way we report."""
    if not examples:
        raise ValueError(f"no documents in {data_path}")
    scorer = _KeepingScorer(nlp)
    scores = nlp.evaluate(examples, batch_size=batch_size, scorer=scorer)
    if scores.get("ents_f") is None:  # no component with an NER scorer: score doc.ents anyway
        scores.update(get_ner_prf(scorer.examples))
    # As spaCy's scorer does, gold docs without entity annotation are not scored.
    annotated = [eg for eg in scorer.examples if eg.reference.has_annotation("ENT_IOB")]
    if not annotated:
        raise ValueError(f"no document in {data_path} has entity annotation to score against")
    if len(annotated) < len(examples):
        warnings.warn(
            f"{data_path}: {len(examples) - len(annotated)} of {len(examples)} docs have no "
            "entity annotation and are not scored (spaCy's scorer skips them too)",
            stacklevel=3,
        )
    y_true = [iob2_tags(eg.reference) for eg in annotated]
    y_pred = [aligned_iob2_tags(eg) for eg in annotated]
    unseen = {} if seen is None else {"unseen": unseen_scores(annotated, seen)}
    return {
        "spacy": _plain(scores),
        "seqeval": seqeval_reports(y_true, y_pred),
        "consistency": entity_consistency(annotated),
        "breakdown": entity_breakdown(annotated),
        **unseen,
        "docs": len(examples),
        "docs_scored": len(annotated),
        "tokens": sum(len(eg.reference) for eg in examples),
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
    """The full text report printed by the CLI and written beside the JSON: each
    protocol's entity P/R/F first, then every report of the first protocol, then the
    per-type scores of the others."""
    protocols = {result["protocol"]: result, **result.get("other_protocols", {})}
    sections = [
        f"docs: {result['docs']}  tokens: {result['tokens']}  "
        f"words/s ({result['protocol']}): {result['words_per_second']:.1f}",
        "",
        "== entity P/R/F by how the docs reach the pipeline (spaCy scorer, %) ==",
        _format_protocols(protocols),
        f"== {result['protocol']}: spaCy scorer (ents, %) ==",
        format_spacy_scores(result["spacy"]),
        f"== {result['protocol']}: seqeval entity-level (strict, IOB2) ==",
        result["seqeval"]["entity_text"],
        f"== {result['protocol']}: token-level (B/I prefix ignored) ==",
        result["seqeval"]["token_text"],
        _format_consistency(result.get("consistency")),
        _format_unseen(result.get("unseen")),
        _format_breakdown(result.get("breakdown")),
    ]
    for name, scores in result.get("other_protocols", {}).items():
        sections += [f"== {name}: spaCy scorer (ents, %) ==", format_spacy_scores(scores["spacy"])]
    return "\n".join(sections)


def _format_protocols(protocols: Dict[str, Dict[str, Any]]) -> str:
    width = max(len(name) for name in protocols)
    lines = [f"{'':<{width}} {'P':>8}{'R':>8}{'F':>8}"]
    for name, scores in protocols.items():
        row = "".join(
            f"{100 * (scores['spacy'].get(k) or 0.0):>8.2f}" for k in ("ents_p", "ents_r", "ents_f")
        )
        lines.append(f"{name:<{width}} {row}  {PROTOCOLS.get(name, '')}")
    return "\n".join(lines) + "\n"


def _format_breakdown(breakdown: Optional[Dict[str, Dict[str, Dict[str, float]]]]) -> str:
    if not breakdown:
        return ""
    lines = ["== entity P/R/F by mention (first of its string in the doc, or a repeat) and by "
             "where in the doc it starts (%) =="]  # fmt: skip
    lines.append(f"{'':<18} {'P':>8}{'R':>8}{'F':>8}{'gold':>8}{'pred':>8}")
    for name, buckets in breakdown.items():
        for bucket, row in buckets.items():
            values = "".join(f"{100 * row[k]:>8.2f}" for k in ("p", "r", "f"))
            lines.append(f"{name + ' ' + bucket:<18} {values}{row['gold']:>8}{row['predicted']:>8}")
    return "\n".join(lines) + "\n"


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
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help="comma-separated, the first one reported first: " + ", ".join(PROTOCOLS),
    )
    args = parser.parse_args(argv)
    if args.output and Path(args.output).suffix == ".txt":
        parser.error("--output is the JSON file; the .txt report is written beside it")
    result = evaluate_pipeline(
        args.model,
        args.data,
        batch_size=args.batch_size,
        gpu_id=args.gpu_id,
        seen=args.seen,
        protocols=[name.strip() for name in args.protocols.split(",") if name.strip()],
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
