"""The ``ctx_ner`` component: BIO token classification over context windows → doc.ents."""

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import srsly
from spacy import util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from ..decoding.bio import bio_tag_names
from ..decoding.tags import DocTags, decode_docs
from ..io_atomic import write_bytes
from ..models.settings import EncoderSettings
from .entities import set_batch_entities
from .gold import UnalignedEntitiesWarning, bio_loss, bio_targets, warn_unaligned
from .initialization import check_new_label, initialize_pipe
from .saved_files import SavedFilesReader, SavedPipelineError, load_model_bytes, write_cfg

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
Scores = List[Floats2d]  # the model's tag logits, one (tokens x tags) array per doc
# The factory's own settings: saved in ``cfg`` but, at load, the config's values win.
FACTORY_SETTINGS = ("spans_key", "overwrite")

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


class CtxNER(TrainablePipe):
    """Named entities from BIO tags over context windows (the ``ctx_ner`` factory): the model
    scores every token, ``predict`` decodes valid BIO sequences, ``set_annotations`` writes
    them. ``cfg`` (labels, spans_key, overwrite) is saved; ``to_bytes`` is TrainablePipe's."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], Scores],
        name: str = "ctx_ner",
        *,
        spans_key: str = DEFAULT_SPANS_KEY,
        overwrite: bool = True,
        scorer: Optional[Callable] = None,
    ) -> None:
        """model: tag logits per token (nO: the BIO tag count); the rest as the factory's."""
        self.vocab, self.model, self.name, self.scorer = vocab, model, name, scorer
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

    @property
    def overwrite(self) -> bool:
        """Replace the doc's entities (True) or keep them, adding only those that overlap none
        (False). Settable, e.g. on a sourced pipe; a saved pipeline takes its config's."""
        return bool(self.cfg["overwrite"])

    @overwrite.setter
    def overwrite(self, value: bool) -> None:
        self.cfg["overwrite"] = checked_setting("overwrite", value)

    @property
    def spans_key(self) -> str:
        """The key of the entities with their confidences in ``doc.spans``; settable."""
        return str(self.cfg["spans_key"])

    @spans_key.setter
    def spans_key(self, value: str) -> None:
        self.cfg["spans_key"] = checked_setting("spans_key", value)

    @property
    def precision(self) -> Optional[str]:
        """How the encoder computes at inference where it is now: "fp32", "bf16", "int8"
        or the GPU autocast dtype (None for another architecture; ``encoder_precision``)."""
        return encoder_precision_name(self.model)

    def add_label(self, label: str) -> int:
        """Add a label before ``initialize``; after it, initialize again with the labels."""
        if check_new_label(self, label) in self.labels:
            return 0
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
        """Set the labels (None: the examples' entities'), size the head, load the encoder."""
        initialize_pipe(self, get_examples, nlp, labels)

    def predict(self, docs: Iterable[Doc]) -> List[DocTags]:
        """Decode the docs: per doc, its BIO tag ids and log-probabilities (``DocTags``)."""
        docs = list(docs)
        return self.decode(docs, self.model.predict(docs)) if docs else []

    def decode(self, docs: List[Doc], scores: Scores) -> List[DocTags]:
        """``predict``'s output from the model's ``scores`` of ``docs``."""
        logits = self.model.ops.to_numpy(self.model.ops.xp.concatenate(scores))
        return decode_docs(docs, logits, self.tag_names)

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """As ``TrainablePipe.pipe``, each batch planned while the one before is encoded."""
        if EncoderSettings.of_classifier(self.model) is None:
            return super().pipe(stream, batch_size=batch_size)
        from .prefetch import pipe_planned  # loads torch lazily

        return pipe_planned(self, stream, batch_size, self.decode)

    def set_annotations(self, docs: Iterable[Doc], predictions: List[DocTags]) -> None:
        """Write ``predict``'s output: ``doc.ents``, ``doc.spans[spans_key]`` with scores."""
        spans_key, overwrite = self.cfg["spans_key"], self.cfg["overwrite"]
        set_batch_entities(
            list(docs), predictions, self.tag_names, spans_key=spans_key, overwrite=overwrite
        )

    def get_loss(self, examples: Iterable[Example], scores: Scores) -> Tuple[float, Scores]:
        """BIO softmax cross-entropy summed over tokens; tokens without gold are skipped."""
        examples = list(examples)
        truths = [self._bio_targets(eg) for eg in examples]
        warn_unaligned(examples, truths, self.name)
        return bio_loss(self.model.ops, scores, truths, self.tag_names)

    def _bio_targets(self, example: Example) -> List[Optional[str]]:
        return bio_targets(example, self.labels, self.name)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "CtxNER":
        """Load ``to_bytes``' output; the settings as ``from_disk`` takes them."""
        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": lambda b: load_model_bytes(self.model, b, self.name),
        }
        with config_settings_kept(self):
            util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = ()) -> None:
        """Save the component, each file written atomically; ``cfg`` also records the
        spacy-ctxext version and the model file's size and sha256, which loading checks."""
        model_bytes = b"" if "model" in exclude else self.model.to_bytes()
        serialize = {
            "cfg": lambda p: write_cfg(p, self.cfg, model_bytes),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: write_bytes(p, model_bytes),
        }
        Path(path).mkdir(parents=True, exist_ok=True)
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = ()) -> "CtxNER":
        """Load the component: labels from the saved ``cfg``, the factory's and the encoder's
        usage settings from the config; a damaged file raises ``SavedPipelineError``."""
        files = SavedFilesReader(self.name)
        deserialize: Dict[str, Callable[[Path], Any]] = {
            "cfg": lambda p: self.cfg.update(files.read_cfg(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": lambda p: files.load_model(self.model, p),
        }
        with config_settings_kept(self):
            util.from_disk(path, deserialize, exclude)
            files.warn_if_other_version(Path(path))
        return self


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


def encoder_precision_name(model: Model) -> Optional[str]:
    """``CtxNER.precision``: the encoder's inference precision where it is now (None for
    another architecture than this package's classifier). cpu_precision "auto" picks bf16
    or fp32 by the CPU (docs/cpu-gpu.md)."""
    if EncoderSettings.of_classifier(model) is None:
        return None
    from ..models.encoder_layer import encoder_precision  # loads torch lazily

    return encoder_precision(model.layers[0]).name


def checked_setting(key: str, value: Any) -> Any:
    """``value`` if it is one for the factory setting ``key``, else an error saying why."""
    if key == "overwrite" and not isinstance(value, bool):
        raise ValueError(f"ctx_ner overwrite is True or False, got {value!r}.")
    if key == "spans_key" and not (isinstance(value, str) and value):
        raise ValueError(f"ctx_ner spans_key is a non-empty string, got {value!r}.")
    return value


@contextmanager
def config_settings_kept(pipe: CtxNER) -> Iterator[None]:
    """Load the saved pipe inside the block: its factory settings (so that ``nlp.config``
    and behaviour agree) and its encoder's usage settings stay those of the config."""
    settings = EncoderSettings.of_classifier(pipe.model)
    usage = None if settings is None else settings.configured_usage()
    factory = {key: pipe.cfg[key] for key in FACTORY_SETTINGS}
    yield
    pipe.cfg.update(factory)
    if usage is not None:
        from ..models.encoder_layer import restore_usage_settings  # loads transformers lazily

        restore_usage_settings(pipe.model.layers[0], usage)
