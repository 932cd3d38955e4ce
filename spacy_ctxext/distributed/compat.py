"""What differs between Ray versions, decided in one place from ``ray.__version__``.

- Pool size: ``map_batches(concurrency=N)`` from Ray 2.9 (where ``compute=`` was
  deprecated), then ``compute=ActorPoolStrategy(size=N)`` (``TaskPoolStrategy`` for
  tasks) again from 2.51 (where ``concurrency=`` became the deprecated one).
- Restarts and retries: passed as extra remote args (``max_restarts``,
  ``max_task_retries``), deprecated from 2.60 and announced for removal in 2.64. From 2.64
  they are left to Ray Data's own actor-pool defaults (unlimited restarts and retries as of
  2.60).
"""

import warnings
from typing import Any, Dict, Tuple

MIN_RAY = (2, 9)


def version_tuple(version: str) -> Tuple[int, int]:
    """(major, minor) of a version string such as "2.60.0" or "3.0.0rc1"."""
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def import_ray() -> Any:
    """Ray, or an ImportError that says how to install it (it is an optional extra)."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(
            'spacy_ctxext.distributed needs Ray Data: pip install "spacy-ctxext[ray]"'
        ) from err
    if version_tuple(ray.__version__) < MIN_RAY:
        raise ImportError(f"spacy_ctxext.distributed needs ray>=2.9, found {ray.__version__}")
    return ray


def pool_kwargs(workers: int, version: str) -> Dict[str, Any]:
    """``map_batches`` keywords for a fixed pool of ``workers`` actors."""
    if version_tuple(version) < (2, 51):
        return {"concurrency": workers}
    from ray.data import ActorPoolStrategy

    return {"compute": ActorPoolStrategy(size=workers)}


def task_pool_kwargs(size: int, version: str) -> Dict[str, Any]:
    """``map_batches`` keywords for a task (not actor) pool of at most ``size`` tasks."""
    if version_tuple(version) < (2, 51):
        return {"concurrency": size}
    from ray.data import TaskPoolStrategy

    return {"compute": TaskPoolStrategy(size=size)}


def retry_kwargs(max_task_retries: int, version: str) -> Dict[str, Any]:
    """Restart dead actors without limit; retry a dead actor's batch ``max_task_retries`` times.

    A finite retry count turns a document that kills its process every time (segfault,
    out-of-memory) into a failed run instead of an endless restart loop.
    """
    if version_tuple(version) >= (2, 64):
        return {}
    return {"max_restarts": -1, "max_task_retries": max_task_retries}


def map_batches(dataset: Any, fn: Any, **kwargs: Any) -> Any:
    """``dataset.map_batches`` without Ray 2.60's warning about the retry remote args: it
    points to named parameters, but Ray 2.60 has none for restarts and retries, and this
    module stops passing them at 2.64."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`ray_remote_args` is deprecated")
        return dataset.map_batches(fn, **kwargs)
