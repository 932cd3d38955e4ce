"""The ``ctx_ner`` component: BIO token classification over context windows → doc.ents."""

from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from ..decoding.bio import bio_tag_names
from ..decoding.tags import DocTags, decode_docs
from ..models.settings import EncoderSettings
from ._ctx_ner_internals import SavedSettings, initialize_docs
from .entities import set_batch_entities
from .gold import (
    UnalignedEntitiesWarning,
    bio_loss,
    bio_targets,
    sample_docs,
    warn_unaligned,
)
from .saved_files import SavedPipelineError

__all__ = [
    "CtxNER",
    "DEFAULT_SPANS_KEY",
    "SavedPipelineError",
    "UnalignedEntitiesWarning",
    "ctx_ner_encoder_layer",
    "ctx_ner_pipe",
    "make_ctx_ner",
]

DEFAULT_SPANS_KEY = "ctx_ner"

DEFAULT_MODEL = Config().from_str(
    """
[model]
@architectures = "spacy-ctxext.TokenClassifier.v1"
nO = null

[model.encoder]
@architectures = "spacy-ctxext.ContextExtendedTransformer.v4"
"""
)["model"]


@Language.factory(
    "ctx_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": DEFAULT_SPANS_KEY,
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


class CtxNER(SavedSettings, TrainablePipe):
    """Named entities from BIO tags over context windows (the ``ctx_ner`` factory).

    The model scores every token (``spacy-ctxext.TokenClassifier.v1``); ``predict``
    decodes valid BIO sequences (``decoding.decode_docs``) and ``set_annotations``
    writes them (``pipeline.entities.set_batch_entities``). Labels are inferred at
    ``initialize``; ``cfg`` (labels, spans_key, overwrite) is saved with the pipe, and
    the settings' properties and loading are ``SavedSettings``'.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], List[Floats2d]],
        name: str = "ctx_ner",
        *,
        spans_key: str = DEFAULT_SPANS_KEY,
        overwrite: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        """model: one row of tag logits per token (nO: the BIO tag count); spans_key,
        overwrite: as the factory's; scorer: ``spacy.ner_scorer.v1`` by default."""
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

    def add_label(self, label: str) -> int:
        """Add a label before ``initialize``; after it, initialize again with the labels."""
        if not isinstance(label, str):
            raise ValueError(f"ctx_ner labels are strings, got {label!r}.")
        if label in self.labels:
            return 0
        # spaCy's own check compares nO with the labels; here nO counts BIO tags (2L + 1).
        if self.model.has_dim("nO") and self.model.get_dim("nO") == len(self.tag_names):
            raise ValueError(Errors.E922.format(name=self.name, nO=self.model.get_dim("nO")))
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
        doc_sample = sample_docs(get_examples, self.name)
        if labels is None:
            labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
        # The head is resized below, so labels may be added to an initialized model here.
        self.model.set_dim("nO", None, force=True)  # type: ignore[arg-type]  # None unsets a dim
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
        self.model.initialize(X=initialize_docs(self, doc_sample, get_examples, nlp))

    def predict(self, docs: Iterable[Doc]) -> List[DocTags]:
        """Decode the docs. RETURNS: per doc, its BIO tag ids and tag log-probabilities
        per token (``DocTags``), for ``set_annotations``."""
        docs = list(docs)
        if not docs:
            return []
        return self._decode(docs, self.model.predict(docs))

    def _decode(self, docs: List[Doc], scores: List[Floats2d]) -> List[DocTags]:
        logits = self.model.ops.to_numpy(self.model.ops.xp.concatenate(scores))
        return decode_docs(docs, logits, self.tag_names)

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate the docs, ``batch_size`` at a time, as ``TrainablePipe.pipe`` does;
        with this package's classifier, each batch's encoder input is planned in a worker
        thread while the batch before is encoded (``prefetch``). Same predictions."""
        if EncoderSettings.of_classifier(self.model) is None:
            yield from super().pipe(stream, batch_size=batch_size)
            return
        from ..models.encoder_layer import classifier_predict  # loads torch lazily
        from .prefetch import planned

        error_handler = self.get_error_handler()
        for docs, plan in planned(self.model.layers[0], minibatch(stream, size=batch_size)):
            try:
                scores = classifier_predict(self.model, docs, plan.result())
                self.set_annotations(docs, self._decode(docs, scores))
                yield from docs
            except Exception as e:
                error_handler(self.name, self, docs, e)

    def set_annotations(self, docs: Iterable[Doc], predictions: List[DocTags]) -> None:
        """Write ``doc.ents`` and ``doc.spans[spans_key]`` (``attrs["scores"]``: one
        confidence per entity) from ``predict``'s output.

        docs: the docs ``predict`` was given, in the same order.
        predictions: ``predict``'s output.
        """
        set_batch_entities(
            list(docs),
            predictions,
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
        RETURNS: the loss and its gradient per doc (summed over tokens: ``bio_loss``).
        """
        examples = list(examples)
        truths = [self._bio_targets(eg) for eg in examples]
        warn_unaligned(examples, truths, self.name)
        return bio_loss(self.model.ops, scores, truths, self.tag_names)

    def _bio_targets(self, example: Example) -> List[Optional[str]]:
        return bio_targets(example, self.labels, self.name)


def ctx_ner_pipe(nlp: Language) -> CtxNER:
    """The pipeline's first ctx_ner component, whatever its name."""
    for _, pipe in nlp.pipeline:
        if isinstance(pipe, CtxNER):
            return pipe
    names = ", ".join(nlp.pipe_names) or "none"
    raise ValueError(f"The pipeline has no ctx_ner component (its components: {names}).")


def ctx_ner_encoder_layer(nlp: Language) -> Model:
    """The encoder layer (the thinc Model of ``spacy-ctxext.ContextExtendedTransformer``)
    of ``ctx_ner_pipe(nlp)``."""
    return ctx_ner_pipe(nlp).model.layers[0]
