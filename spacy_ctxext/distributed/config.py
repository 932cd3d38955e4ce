"""How a run spreads its work: ``RunConfig``, the one home of the command line's defaults.

Free of Ray and pyarrow, so that ``--help`` and a bad option answer before either loads.
"""

from dataclasses import dataclass
from typing import Optional

from ..pipeline.ctx_ner import DEFAULT_SPANS_KEY
from .output.lock import STALE_SECONDS


@dataclass
class RunConfig:
    """How to spread the work; the CLI's options."""

    workers: int = 1  # actors, each with one loaded pipeline
    gpus_per_worker: float = 0.0
    threads_per_worker: int = 1  # CPUs Ray reserves per actor, and its torch threads
    batch_size: int = 16  # docs per Ray batch and per output part; nlp.pipe's batch size
    docbin: bool = False
    code: Optional[str] = None  # a Python file each actor imports (custom components)
    spans_key: str = DEFAULT_SPANS_KEY
    max_task_retries: int = 3
    address: Optional[str] = None  # an existing Ray cluster; None: the current or a local one
    progress: bool = True
    retry_failed: bool = False  # annotate again the docs that failed in an earlier run
    lock_stale_seconds: float = STALE_SECONDS
