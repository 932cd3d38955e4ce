"""What ctx_ner does around loading and initializing: its settings as properties, saved
and loaded with the config's factory and usage settings kept over the saved ones
(``SavedSettings``, the component's base class), and the docs the model initializes with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example

from ..models.settings import EncoderSettings
from ..saved_parts import SavedPartError
from .saved_files import SavedPipelineError, load_component, save_component

# The factory's own settings: saved in ``cfg`` but, at load, the config's values win.
FACTORY_SETTINGS = ("spans_key", "overwrite")


Configured = Tuple[Dict[str, Any], Optional[Dict[str, Any]]]


def configured_settings(pipe: TrainablePipe) -> Configured:
    """What the config gave the pipe before the saved state replaces it: the factory's
    settings (so that ``nlp.config`` and behaviour agree) and the encoder's
    usage settings (None for another architecture)."""
    settings = EncoderSettings.of_classifier(pipe.model)
    usage = None if settings is None else settings.configured_usage()
    return {key: pipe.cfg[key] for key in FACTORY_SETTINGS}, usage


def restore_settings(pipe: TrainablePipe, configured: Configured) -> None:
    factory, usage = configured
    pipe.cfg.update(factory)
    if usage is not None:
        from ..models.encoder_layer import restore_usage_settings  # loads transformers lazily

        restore_usage_settings(pipe.model.layers[0], usage)


def initialize_docs(
    pipe: TrainablePipe,
    sample: List[Doc],
    get_examples: Callable[[], Iterable[Example]],
    nlp: Optional[Language],
) -> List[Doc]:
    """The docs the model initializes with: the sample, or for an encoder with channels
    (whose vocabularies need them all) every training doc as ctx_ner sees it, a copy of
    the predicted doc run through the components before it (e.g. an entity_ruler)."""
    from ..models.encoder_shim import has_channels  # loads torch lazily

    if not (pipe.model.layers and has_channels(pipe.model.layers[0])):
        return sample
    docs = [eg.x.copy() for eg in get_examples()]
    for other, proc in nlp.pipeline if nlp is not None else []:
        if other == pipe.name:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
    return docs


class SavedSettings(TrainablePipe):
    """ctx_ner's settings (``overwrite``, ``spans_key``, the encoder's ``precision``) and
    how the component is saved and loaded with them."""

    @property
    def overwrite(self) -> bool:
        """Replace entities already on the doc (True) or keep them and add only entities
        that do not overlap them (False). Settable: on a sourced pipe, whose ``config``
        spaCy does not apply, this is the way to change it; it lasts for this process,
        while a saved pipeline takes the value of its config (``spacy.load(path,
        config={"components": {"ctx_ner": {"overwrite": False}}})``)."""
        return bool(self.cfg["overwrite"])

    @overwrite.setter
    def overwrite(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise ValueError(f"ctx_ner overwrite is True or False, got {value!r}.")
        self.cfg["overwrite"] = value

    @property
    def spans_key(self) -> str:
        """The ``doc.spans`` key of the entities with their confidences; settable, as
        ``overwrite``."""
        return str(self.cfg["spans_key"])

    @spans_key.setter
    def spans_key(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError(f"ctx_ner spans_key is a non-empty string, got {value!r}.")
        self.cfg["spans_key"] = value

    @property
    def precision(self) -> Optional[str]:
        """How the encoder computes at inference where it is now: "fp32", "bf16", "int8"
        or the GPU autocast dtype (None for another architecture). cpu_precision "auto"
        picks bf16 or fp32 by the CPU (docs/cpu-gpu.md)."""
        if EncoderSettings.of_classifier(self.model) is None:
            return None
        from ..models.encoder_layer import encoder_precision  # loads torch lazily

        return encoder_precision(self.model.layers[0]).name

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> SavedSettings:
        """Load the component; labels come from the saved ``cfg``, the factory's settings
        and the encoder's usage settings from the config (``spacy.load(path, config=...)``)."""
        configured = configured_settings(self)
        try:
            super().from_bytes(bytes_data, exclude=exclude)
        except SavedPartError as err:
            raise SavedPipelineError(
                f"Cannot load the {self.name!r} component from bytes: {err}. They are not "
                "the bytes nlp.to_bytes() gave: send or store them again, whole."
            ) from None
        restore_settings(self, configured)
        return self

    def from_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()
    ) -> SavedSettings:
        """Load the component; labels come from the saved ``cfg``, the factory's settings
        and the encoder's usage settings from the config (``spacy.load(path, config=...)``).
        A missing, truncated or corrupt file raises ``SavedPipelineError`` naming it."""
        configured = configured_settings(self)
        load_component(self, Path(path), exclude)
        restore_settings(self, configured)
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Save the component as spaCy does, each file written atomically; ``cfg`` also
        records the spacy-ctxext version and the model file's size and sha256, which
        loading checks."""
        save_component(self, Path(path), exclude)
