"""Plan the next batch of docs while the encoder runs this one (inference only).

``CtxNER.pipe`` (``pipe_planned``) takes its batches from ``planned``: each comes with
the future of its ``BatchPlan`` (wordpieces, windows, packing and padding: numpy and the
Rust tokenizer), made in one worker thread while the caller encodes, decodes and
annotates the batch before. On a GPU the encoder then never waits for the host's
planning: the caller spends its wait for the device's results (the GIL released) while
the worker plans.

On a CPU it does not pay, so there the plans are made in the caller (``use_worker``):
the encoder's torch threads and the planner share the cores, and their Python parts the
GIL. Measured on LitBank dev (2 busy cores, 1 torch thread): the null encoder 339k words/s
in the caller vs 259k with the worker (GIL handoffs); all-MiniLM-L6-v2 2,617 vs 2,606.

The batches are pulled from the stream in the caller's thread, so the components before
``ctx_ner`` never run in the worker; the worker only reads its batch's docs. A plan is a
pure function of the docs and the encoder's settings: with or without the worker, the
predictions are the same. An exception in the worker is raised by ``Future.result``, in
the caller, for the batch it belongs to.
"""

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, List, Tuple

from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.util import minibatch
from thinc.api import Model
from thinc.types import Floats2d

from ..decoding.tags import DocTags
from ..models.encoder_layer import classifier_predict, get_net, plan_docs
from ..planning.batch_plan import BatchPlan

__all__ = ["pipe_planned", "planned", "use_worker"]

Planned = Iterator[Tuple[List[Doc], "Future[BatchPlan]"]]
Decode = Callable[[List[Doc], List[Floats2d]], List[DocTags]]


def pipe_planned(
    pipe: TrainablePipe, stream: Iterable[Doc], batch_size: int, decode: Decode
) -> Iterator[Doc]:
    """``CtxNER.pipe`` with this package's classifier: the docs annotated ``batch_size`` at
    a time, each batch encoded with its plan (``planned``) and its scores decoded by
    ``decode``; a batch's error goes to the pipe's error handler, as in ``TrainablePipe``."""
    error_handler = pipe.get_error_handler()
    for docs, plan in planned(pipe.model.layers[0], minibatch(stream, size=batch_size)):
        try:
            scores = classifier_predict(pipe.model, docs, plan.result())
            pipe.set_annotations(docs, decode(docs, scores))
            yield from docs
        except Exception as e:
            error_handler(pipe.name, pipe, docs, e)


def use_worker(encoder: Model) -> bool:
    """Whether to plan in a worker: where the encoder runs on a GPU."""
    return get_net(encoder).empty.device.type == "cuda"


def planned(encoder: Model, batches: Iterable[List[Doc]]) -> Planned:
    """Each batch with the future of its plan. With a worker (``use_worker``), the next
    batch's plan is already being made when a batch is handed out; without one, each
    plan is made when its batch is, and its error (if any) is kept in its future."""
    return _ahead(encoder, iter(batches)) if use_worker(encoder) else _inline(encoder, batches)


def _inline(encoder: Model, batches: Iterable[List[Doc]]) -> Planned:
    for docs in batches:
        future: Future[BatchPlan] = Future()
        try:
            future.set_result(plan_docs(encoder, docs))
        except Exception as e:
            future.set_exception(e)
        yield docs, future


def _ahead(encoder: Model, stream: Iterator[List[Doc]]) -> Planned:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctx_ner-plan") as pool:
        docs = next(stream, None)
        ahead = None if docs is None else (docs, pool.submit(plan_docs, encoder, docs))
        while ahead is not None:
            current = ahead
            docs = next(stream, None)  # the components before ctx_ner run here
            ahead = None if docs is None else (docs, pool.submit(plan_docs, encoder, docs))
            yield current
