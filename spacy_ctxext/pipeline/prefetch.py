"""Plan the next batch of docs while the encoder runs this one (inference only).

``CtxNER.pipe`` takes its batches from ``planned``: each comes with the future of its
``BatchPlan`` (wordpieces, windows, packing and padding: numpy and the Rust tokenizer),
made in one worker thread while the caller encodes, decodes and annotates the batch
before. On a GPU the encoder then never waits for the host's planning: the caller
spends its wait for the device's results (the GIL released) while the worker plans.

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
from typing import Iterable, Iterator, List, Tuple

from spacy.tokens import Doc
from thinc.api import Model

from ..models.encoder_layer import get_net, plan_docs
from ..planning.batch_plan import BatchPlan

__all__ = ["planned", "use_worker"]

Planned = Iterator[Tuple[List[Doc], "Future[BatchPlan]"]]


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
