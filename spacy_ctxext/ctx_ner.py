"""The ``ctx_ner`` component: BIO token classification over context windows → doc.ents."""

import warnings
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, SequenceCategoricalCrossentropy
from thinc.types import Floats2d

from .bio import biluo_to_bio, bio_tag_names
from .decoding import DocTags, decode_docs, set_doc_entities
from .settings import EncoderSettings

DEFAULT_MODEL = Config().from_str(
    """
[model]
@architectures = "spacy-ctxext.TokenClassifier.v1"
nO = null

[model.encoder]
@architectures = "spacy-ctxext.ContextExtendedTransformer.v1"
"""
)["model"]


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
    """Named entities from BIO tags over context windows (the ``ctx_ner`` factory).

    The model scores every token (``spacy-ctxext.TokenClassifier.v1``); ``predict``
    decodes valid BIO sequences (``decoding.decode_docs``) and ``set_annotations``
    writes them (``decoding.set_doc_entities``). Labels are inferred at
    ``initialize``; ``cfg`` (labels, spans_key, overwrite) is saved with the pipe.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], List[Floats2d]],
        name: str = "ctx_ner",
        *,
        spans_key: str = "ctx_ner",
        overwrite: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        """vocab: the pipeline's vocab.
        model: a model giving one row of tag logits per token (nO: the BIO tag count).
        name: the component's name in the pipeline.
        spans_key: ``doc.spans`` key of the predicted entities and their confidences.
        overwrite: replace entities already on the doc, or keep them (see the factory).
        scorer: ``spacy.ner_scorer.v1`` by default (ents_p, ents_r, ents_f, per type).
        """
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {"labels": [], "spans_key": spans_key, "overwrite": overwrite}

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels, in the order of their tags."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        """The labels, for ``[initialize.components.ctx_ner.labels]`` (``spacy init labels``)."""
        return list(self.labels)

    @property
    def tag_names(self) -> List[str]:
        """The BIO tags the model scores: ``["O", "B-L1", "I-L1", ...]``."""
        return bio_tag_names(self.labels)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "CtxNER":
        """Load the component; the encoder's usage settings of the config are kept."""
        usage = self._configured_usage()
        super().from_bytes(bytes_data, exclude=exclude)
        return self._restore_usage(usage)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "CtxNER":
        """Load the component; the encoder's usage settings of the config are kept."""
        usage = self._configured_usage()
        super().from_disk(path, exclude=exclude)
        return self._restore_usage(usage)

    def _configured_usage(self) -> Optional[Dict[str, Any]]:
        if self.model.name != "ctxext.token_classifier":
            return None  # another architecture: its own attrs rules
        return EncoderSettings.of(self.model.layers[0]).configured_usage()

    def _restore_usage(self, usage: Optional[Dict[str, Any]]) -> "CtxNER":
        if usage is not None:
            from .architectures import restore_usage_settings  # loads transformers lazily

            restore_usage_settings(self.model.layers[0], usage)
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
        """Load the encoder, set the labels and size the tag head.

        get_examples: returns the training examples; up to 10 initialize the model.
        nlp: the pipeline (unused; part of spaCy's signature).
        labels: the entity labels; inferred from the examples' entities when None.
        """
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

    def predict(self, docs: Iterable[Doc]) -> List[DocTags]:
        """Decode each doc: its BIO tag ids and tag log-probabilities per token.

        docs: the docs to tag.
        RETURNS: one ``DocTags`` per doc, for ``set_annotations``.
        """
        docs = list(docs)
        if not docs:
            return []
        scores = self.model.predict(docs)
        logits = self.model.ops.to_numpy(self.model.ops.xp.concatenate(scores))
        return decode_docs(docs, logits, self.tag_names)

    def set_annotations(self, docs: Iterable[Doc], predictions: List[DocTags]) -> None:
        """Write ``doc.ents`` and ``doc.spans[spans_key]`` (``attrs["scores"]``: one
        confidence per entity) from ``predict``'s output.

        docs: the docs ``predict`` was given, in the same order.
        predictions: ``predict``'s output.
        """
        for doc, decoded in zip(docs, predictions):
            set_doc_entities(
                doc,
                decoded,
                self.tag_names,
                spans_key=self.cfg["spans_key"],
                overwrite=self.cfg["overwrite"],
            )

    def get_loss(
        self, examples: Iterable[Example], scores: List[Floats2d]
    ) -> Tuple[float, List[Floats2d]]:
        """Softmax cross-entropy over BIO tags; tokens without an aligned gold tag are skipped.

        examples: the batch, its gold entities in ``example.reference``.
        scores: the model's tag logits per doc, in the examples' order.
        RETURNS: the loss and its gradient per doc.

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
        targets = [biluo_to_bio(tag) for tag in example.get_aligned_ner()]
        unseen = {tag[2:] for tag in targets if tag and tag != "O"} - set(self.labels)
        if unseen:
            raise ValueError(
                f"[{self.name}] Gold entity label {sorted(unseen)[0]!r} was not seen at "
                f"initialize (labels: {list(self.labels)}). Add it to the initialize examples "
                "or to [initialize.components.ctx_ner.labels], then initialize again "
                "(spacy train does not initialize a sourced ctx_ner: drop `source` to "
                "train one with the new labels)."
            )
        return targets
