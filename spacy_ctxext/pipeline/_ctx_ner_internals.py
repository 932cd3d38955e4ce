"""What ctx_ner does around loading and initializing: the config's factory and usage
settings kept over the saved ones at load (issue #26), and the docs the model
initializes with.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example

from ..models.settings import EncoderSettings

# The factory's own settings: saved in ``cfg`` but, at load, the config's values win.
FACTORY_SETTINGS = ("spans_key", "overwrite")


Configured = Tuple[Dict[str, Any], Optional[Dict[str, Any]]]


def configured_settings(pipe: TrainablePipe) -> Configured:
    """What the config gave the pipe before the saved state replaces it: the factory's
    settings (so that ``nlp.config`` and behaviour agree, issue #26) and the encoder's
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
    shims = pipe.model.layers[0].shims if pipe.model.layers else []
    if not (shims and getattr(shims[0]._model, "channels", None)):
        return sample
    docs = [eg.x.copy() for eg in get_examples()]
    for other, proc in nlp.pipeline if nlp is not None else []:
        if other == pipe.name:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(d) for d in docs]
    return docs
