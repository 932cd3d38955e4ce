"""Initializing ctx_ner: its labels (given, or those of the training examples' entities),
its tag head sized to their BIO tags, and the docs its model initializes with: up to 10 of
the examples' predicted docs or, for an encoder with channels (whose vocabularies need
them all), every training doc as ctx_ner sees it, after the components before it."""

from itertools import islice
from typing import Callable, Iterable, List, Optional

from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_get_examples

__all__ = ["check_new_label", "initialize_docs", "initialize_pipe", "sample_docs"]

GetExamples = Callable[[], Iterable[Example]]


def initialize_pipe(
    pipe: TrainablePipe,
    get_examples: GetExamples,
    nlp: Optional[Language],
    labels: Optional[Iterable[str]],
) -> None:
    """``CtxNER.initialize``: add the labels (None: the examples' entities' labels), size
    the tag head to their tags and initialize the model with ``initialize_docs``."""
    doc_sample = sample_docs(get_examples, pipe.name)
    if labels is None:
        labels = sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})
    # The head is resized below, so labels may be added to an initialized model here.
    pipe.model.set_dim("nO", None, force=True)
    for label in labels:
        pipe.add_label(label)
    if not pipe.labels:
        raise ValueError(
            f"[{pipe.name}] No entity labels found: the training examples have no "
            "entities and no labels were given. Add annotated examples or pass "
            "labels (e.g. [initialize.components.ctx_ner.labels])."
        )
    # force: re-initializing with other labels resizes the head (no thinc params here).
    pipe.model.set_dim("nO", len(pipe.tag_names), force=True)
    pipe.model.initialize(X=initialize_docs(pipe, doc_sample, get_examples, nlp))


def check_new_label(pipe: TrainablePipe, label: str) -> str:
    """``label`` if ``pipe`` can take it as a new label, else an error saying why."""
    if not isinstance(label, str):
        raise ValueError(f"ctx_ner labels are strings, got {label!r}.")
    # spaCy's own check compares nO with the labels; here nO counts BIO tags (2L + 1).
    full = pipe.model.has_dim("nO") and pipe.model.get_dim("nO") == len(pipe.tag_names)
    if full and label not in pipe.labels:
        raise ValueError(Errors.E922.format(name=pipe.name, nO=pipe.model.get_dim("nO")))
    return label


def sample_docs(get_examples: GetExamples, name: str) -> List[Doc]:
    """Up to 10 predicted docs; an empty corpus gets its own message (E930 reads as a
    type error, and an empty generator would otherwise pass as 'no entity labels')."""
    examples = get_examples() if callable(get_examples) else None
    sample = list(islice(examples, 10)) if hasattr(examples, "__iter__") else None
    if sample == []:
        raise ValueError(
            f"[{name}] The training corpus is empty: get_examples() gave no "
            "examples. Check [paths.train] and [corpora.train] (a .spacy file with docs)."
        )
    validate_get_examples(get_examples, "CtxNER.initialize")
    return [eg.x for eg in sample or []]


def initialize_docs(
    pipe: TrainablePipe,
    sample: List[Doc],
    get_examples: GetExamples,
    nlp: Optional[Language],
) -> List[Doc]:
    """The docs the model initializes with: the sample, or for an encoder with channels
    every training doc as ctx_ner sees it, a copy of the predicted doc run through the
    components before it (e.g. an entity_ruler)."""
    from ..models.encoder_shim import has_channels  # loads torch lazily

    if not (pipe.model.layers and has_channels(pipe.model.layers[0])):
        return sample
    docs = [eg.x.copy() for eg in get_examples()]
    for other, proc in nlp.pipeline if nlp is not None else []:
        if other == pipe.name:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
    return docs
