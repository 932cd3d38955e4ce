"""Annotate a corpus on Ray Data: one loaded spaCy pipeline per actor, nothing lost.

    python -m spacy_ctxext.distributed MODEL INPUT OUTPUT [--workers N] [--gpus-per-worker G]
        [--threads-per-worker T] [--batch-size B] [--docbin] [--code FILE]

``nlp.pipe(n_process=...)`` forks model copies on one machine and is fragile with torch and
GPUs; Ray Data gives an actor pool that loads the pipeline once per actor, restarts dead
actors, retries their batches and spreads over a cluster. Ray is an optional extra
(``pip install "spacy-ctxext[ray]"``): nothing in this package imports it before a run
starts, so ``spacy_ctxext`` works without it.

The run (``run``, with its settings in ``config`` and its command line in ``cli``) reads
the corpus on the workers (``reading/``: ``sources``, ``parse``, ``inputs``), annotates it
in a pool of actors (``actor``) that write the output exactly once (``output/``: ``store``,
``resume``, ``lock``), in the columns of ``schema``, and counts what comes back
(``progress``). ``compat`` holds what differs between Ray versions.
"""

from typing import Any

__all__ = ["annotate_corpus"]


def __getattr__(name: str) -> Any:
    """Lazy re-export: importing the package must not pull in pyarrow or Ray."""
    if name == "annotate_corpus":
        from .run import annotate_corpus

        return annotate_corpus
    raise AttributeError(name)
