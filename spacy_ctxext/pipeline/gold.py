"""Gold data for training ``ctx_ner``: BIO targets aligned to the predicted tokens.

spaCy aligns each example's gold entities to the predicted tokens
(``Example.get_aligned_ner``, BILUO); here they become the BIO tags the model learns,
with a warning that counts tokens left without a tag, and a clear error for labels
the component was not initialized with.
"""

import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
from spacy.training import Example
from thinc.api import Ops, SequenceCategoricalCrossentropy
from thinc.types import Floats2d

from ..decoding.bio import biluo_to_bio

# reference.user_data key: the (start, end) gold tokens that have a loss, where the rest of
# the reference is context whose gold is missing on purpose.
CORE_SPAN = "spacy-ctxext.core_span"


class UnalignedEntitiesWarning(UserWarning):
    """Gold tokens of annotated examples without an entity tag; filterable on its own."""


def bio_targets(example: Example, labels: Sequence[str], name: str) -> List[Optional[str]]:
    """The example's gold BIO tag per predicted token (None: no aligned gold tag).

    name: the component's name, for the error about labels unseen at initialize.
    """
    targets = biluo_to_bio(example.get_aligned_ner())
    unseen = {tag[2:] for tag in targets if tag and tag != "O"} - set(labels)
    if unseen:
        raise ValueError(
            f"[{name}] Gold entity label {sorted(unseen)[0]!r} was not seen at "
            f"initialize (labels: {list(labels)}). Add it to the initialize examples "
            "or to [initialize.components.ctx_ner.labels], then initialize again "
            "(spacy train does not initialize a sourced ctx_ner: drop `source` to "
            "train one with the new labels)."
        )
    return targets


def bio_loss(
    ops: Ops, scores: List[Floats2d], truths: List[List[Optional[str]]], tag_names: List[str]
) -> Tuple[float, List[Floats2d]]:
    """Softmax cross-entropy of tag logits against BIO targets (None: no loss there),
    summed over tokens as spaCy's tagger does: a token's gradient does not depend on how
    many docs share its batch (thinc's ``normalize=True`` divides by that)."""
    loss_func = SequenceCategoricalCrossentropy(
        names=tag_names, normalize=False, missing_value=None
    )
    probs = [ops.softmax(s) for s in scores]
    d_scores, loss = loss_func(probs, truths)  # type: ignore[arg-type]  # None: missing_value
    return float(loss), d_scores


def warn_unaligned(
    examples: Sequence[Example], truths: Sequence[Sequence[Optional[str]]], name: str
) -> None:
    """One warning per batch for gold tokens that have no tag in annotated examples.

    Entity offsets off token boundaries (spaCy's W030 at ``Example.from_dict``) or
    gold tokenization that does not map onto the predicted tokens leave such
    tokens; they are left out of the loss, and the count says how much is lost.
    Tokens whose gold is missing on purpose are not counted: those aligned only to gold
    tokens outside ``reference.user_data[CORE_SPAN]`` (the context that
    ``spacy-ctxext.ContextChunkCorpus.v1`` gives without gold).
    """
    annotated = [
        (eg, t) for eg, t in zip(examples, truths) if eg.reference.has_annotation("ENT_IOB")
    ]
    counts = [_unaligned_tokens(eg, t) for eg, t in annotated]
    n_tokens, n_examples = sum(counts), sum(c > 0 for c in counts)
    if n_tokens:
        warnings.warn(
            f"[{name}] {n_tokens} token(s) in {n_examples} of {len(examples)} "
            "training examples have no gold entity tag: entity offsets that are not on "
            "token boundaries, or gold tokens that do not align to the predicted ones. "
            "They are left out of the loss. Check the offsets with "
            "spacy.training.offsets_to_biluo_tags(nlp.make_doc(text), entities).",
            UnalignedEntitiesWarning,
            stacklevel=3,
        )


def _unaligned_tokens(example: Example, truths: Sequence[Optional[str]]) -> int:
    """Predicted tokens without a gold tag, less those aligned only to gold tokens outside
    the example's core (``CORE_SPAN``)."""
    untagged = np.array([tag is None for tag in truths], dtype=bool)
    core = example.reference.user_data.get(CORE_SPAN)
    if core is None or not untagged.any():
        return int(untagged.sum())
    x2y = example.alignment.x2y
    owners = np.repeat(np.arange(len(x2y.lengths)), x2y.lengths)  # predicted token per link
    in_core = (x2y.data >= core[0]) & (x2y.data < core[1])
    touches_core = np.bincount(owners[in_core], minlength=len(untagged)) > 0
    return int((untagged & touches_core).sum())
