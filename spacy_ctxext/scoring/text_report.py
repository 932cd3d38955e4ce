"""The evaluation's text report: each protocol's entity P/R/F first, then every report of
the first protocol, as printed by ``python -m spacy_ctxext.cli.evaluate`` and written beside
its JSON.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .evaluate import PROTOCOLS


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
