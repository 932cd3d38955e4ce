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

    python -m spacy_ctxext.cli.evaluate MODEL DATA.spacy --output metrics/NAME.json
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.scorer import Scorer, get_ner_prf
from spacy.tokens import Doc
from spacy.training import Corpus, Example

from ..pipeline.loading import load_pipeline
from ..training.gazetteer import entity_labels
from ..training.readers import read_docbin, unannotated_copy
from .breakdown import entity_breakdown
from .consistency import entity_consistency
from .paired import doc_counts
from .tag_reports import _plain, aligned_iob2_tags, iob2_tags, seqeval_reports
from .unseen import unseen_scores

__all__ = ["evaluate_pipeline"]


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


PROTOCOLS = {
    "raw_text": "each doc's text, tokenized and annotated by the whole pipeline "
    "(as `spacy evaluate` without flags and `nlp(text)`)",
    "gold_tokens": "the gold tokens, no sentence starts",
    "gold_sentences": "the gold tokens and gold sentence starts (the study's first protocol)",
}
PRIMARY_PROTOCOL = "raw_text"


def protocol_examples(nlp: Language, data_path: Union[str, Path], protocol: str) -> List[Example]:
    """The gold docs of ``data_path`` paired with what ``protocol`` gives the pipeline.

    ``raw_text`` is spaCy's own ``Corpus`` (``gold_preproc = False``), the examples that
    ``spacy evaluate`` and ``spacy train``'s dev set build: ``nlp.make_doc(doc.text)``.
    """
    if protocol == "raw_text":
        return list(Corpus(data_path, gold_preproc=False)(nlp))
    golds = read_docbin(data_path, nlp.vocab)
    if protocol == "gold_sentences":
        return [Example(unannotated_copy(nlp, gold), gold) for gold in golds]
    if protocol == "gold_tokens":
        return [Example(unannotated_copy(nlp, gold, sentences=False), gold) for gold in golds]
    raise ValueError(f"unknown protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")


class UnknownLabelsWarning(UserWarning):
    """Gold entities whose label no entity component of the pipeline predicts."""


def warn_unknown_labels(
    nlp: Language, golds: Iterable[Doc], data_path: Union[str, Path]
) -> Counter:
    """Warn, with counts, about labels of the gold docs (read from ``data_path``) that none
    of the pipeline's components writing ``doc.ents`` has (they can only count as misses);
    returns those counts."""
    labels: set = set()
    for name in nlp.pipe_names:
        if "doc.ents" in nlp.get_pipe_meta(name).assigns:
            labels.update(getattr(nlp.get_pipe(name), "labels", ()) or ())
    if not labels:  # no component that says which labels it predicts
        return Counter()
    gold = Counter(ent.label_ for doc in golds for ent in doc.ents)
    unknown = Counter({label: n for label, n in gold.items() if label not in labels})
    if unknown:
        listed = ", ".join(f"{label} ({n})" for label, n in unknown.most_common())
        warnings.warn(
            f"{data_path}: {sum(unknown.values())} gold entities have labels the pipeline "
            f"does not predict: {listed} (it predicts {', '.join(sorted(labels))}). They count "
            "as misses in recall and F1; score on data with the pipeline's labels, or train it "
            "with these.",
            UnknownLabelsWarning,
            stacklevel=3,
        )
    return unknown


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
        one of its entities' (see ``spacy_ctxext.scoring.unseen.unseen_scores``).
    """
    if not protocols:
        raise ValueError("no protocol to score: give at least one of " + ", ".join(PROTOCOLS))
    nlp = load_pipeline(model, gpu_id)
    strings = None if seen is None else _strings(seen)
    scored = {}
    for protocol in protocols:  # one protocol's examples in memory at a time
        examples = protocol_examples(nlp, data_path, protocol)
        if protocol == protocols[0]:  # every protocol has the same gold docs
            warn_unknown_labels(nlp, (eg.reference for eg in examples), data_path)
        scored[protocol] = score_examples(nlp, examples, data_path, batch_size, strings)
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
        "doc_counts": doc_counts(annotated),  # for paired bootstraps (scoring/paired.py)
        "docs": len(examples),
        "docs_scored": len(annotated),
        "tokens": sum(len(eg.reference) for eg in examples),
        "words_per_second": float(scores.get("speed", 0.0)),
    }


def _strings(path: Union[str, Path]) -> set:
    strings = set(entity_labels(read_docbin(path)))
    if not strings:
        raise ValueError(f"--seen {path}: no entities in it, so every entity would be unseen")
    return strings
