"""Loading the pipeline a command or a scorer runs: any spaCy pipeline, given as a
``Language`` already built or as a name or path for ``spacy.load``, on the GPU if asked.

Here rather than in ``cli/`` because library code loads pipelines too
(``spacy_ctxext.scoring.evaluate.evaluate_pipeline``), and ``scoring/`` does not import the
command lines."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import spacy
from spacy.language import Language

__all__ = ["load_pipeline"]


def load_pipeline(model: Union[str, Path, Language], gpu_id: int = -1) -> Language:
    """Return ``model`` if it is already a pipeline, else ``spacy.load`` it (on GPU if asked)."""
    if isinstance(model, Language):
        return model
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    return spacy.load(model)
