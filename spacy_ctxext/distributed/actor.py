"""The callable class Ray Data runs on each actor: one loaded pipeline, many batches.

Ray builds the class once per actor (so the model loads once, not once per batch) and calls
it with an Arrow batch of ``schema.INPUT`` rows; it annotates them, writes the batch's part
to the output (``output.store.write_part``) and returns the part's ``schema.MANIFEST`` rows, all
the driver sees. A doc that raises becomes an "error" row instead of failing the batch:
one bad input must not stop, or endlessly retry, a run over millions of documents.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import pyarrow as pa
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from ..annotation.records import doc_entities
from . import schema
from .config import RunConfig
from .output.store import write_part

Outcome = Union[Doc, str]  # the annotated Doc, or the error it raised


class Annotator:
    """Ray Data UDF: ``map_batches(Annotator, fn_constructor_kwargs=...)``."""

    def __init__(self, model: str, *, output: str, run_id: str, config: RunConfig) -> None:
        setup_process(config.threads_per_worker, config.gpus_per_worker > 0, config.code)
        self.nlp: Language = spacy.load(model)
        self.output = output
        self.run_id = run_id
        self.config = config

    def __call__(self, batch: pa.Table) -> pa.Table:
        config = self.config
        results, docs = annotate_batch(
            self.nlp, batch, config.spans_key, batch_size=config.batch_size
        )
        return write_part(self.output, self.run_id, results, docs, config.docbin)


def setup_process(threads: int, gpu: bool, code: Optional[str]) -> None:
    """Per-actor settings, made before the model loads.

    Threads: each actor holds ``threads`` of Ray's CPUs, and torch would otherwise start one
    thread per core and oversubscribe the machine N times. GPU: Ray sets
    CUDA_VISIBLE_DEVICES for the actor, so its GPU is device 0. Code: custom components
    must be registered in the actor's own process, as ``spacy train --code`` does.
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    if code:
        spacy.util.import_file("ctxext_user_code", code)
    if gpu:
        spacy.require_gpu(0)


def annotate_batch(
    nlp: Language, batch: pa.Table, spans_key: str, *, batch_size: int
) -> Tuple[pa.Table, List[Doc]]:
    """``nlp.pipe`` over the batch's texts: one ``schema.RESULT`` row per input row, and the
    Docs of those that did not fail (ids in ``user_data["id"]``, for the DocBin)."""
    ids: List[str] = batch.column("id").to_pylist()
    texts: List[str] = batch.column("text").to_pylist()
    # Long documents are the point: raise spaCy's 1M-character guard (E088) to the longest
    # text, as spacy_ctxext.cli.annotate does, rather than fail every book.
    nlp.max_length = max([nlp.max_length, *map(len, texts)])
    outcomes = pipe_isolating(nlp, texts, batch_size)
    carried = batch.select(["meta"] + [name for name, _ in schema.SOURCE_FIELDS]).to_pylist()
    rows = [
        {**result_row(doc_id, text, outcome, spans_key), **extra}
        for doc_id, text, outcome, extra in zip(ids, texts, outcomes, carried)
    ]
    docs = []
    for doc_id, outcome in zip(ids, outcomes):
        if isinstance(outcome, Doc):
            outcome.user_data["id"] = doc_id
            docs.append(outcome)
    return pa.Table.from_pylist(rows, schema=schema.RESULT), docs


def pipe_isolating(nlp: Language, texts: Sequence[str], batch_size: int) -> List[Outcome]:
    """The batch through ``nlp.pipe``; if that raises, each text alone to find the culprit.

    A batched component fails the whole batch for one bad doc, so the retry is per doc:
    the good docs of a failed batch are annotated again, alone.
    """
    try:
        return list(nlp.pipe(texts, batch_size=batch_size))
    except Exception:
        return [_one(nlp, text) for text in texts]


def _one(nlp: Language, text: str) -> Outcome:
    try:
        return next(iter(nlp.pipe([text])))
    except Exception as err:  # reported in the manifest, not raised: see the module doc
        return f"{type(err).__name__}: {err}"


def result_row(doc_id: str, text: str, outcome: Outcome, spans_key: str) -> Dict[str, Any]:
    """The manifest fields and the nested entities of one doc."""
    row: Dict[str, Any] = {"id": doc_id, "n_chars": len(text)}
    if isinstance(outcome, str):
        row.update(n_tokens=None, n_entities=0, status="error", error=outcome)
        return {**row, "entities": []}
    entities = doc_entities(outcome, spans_key)
    row.update(n_tokens=len(outcome), n_entities=len(entities), status="ok", error=None)
    return {**row, "entities": entities}
