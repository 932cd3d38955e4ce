"""Which part of a saved encoder failed to load: ``reading(part)`` turns any error while
reading one part (weights, tokenizer files, config, channel vocabularies) into a
``SavedPartError`` that names it, for the component to name the file and the fix.

Torch-free, so ``pipeline`` can catch the error without loading torch.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["SavedPartError", "reading"]


class SavedPartError(ValueError):
    """A part of a saved model that is missing, truncated or corrupt."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part}: {reason}")
        self.part = part
        self.reason = reason


@contextmanager
def reading(part: str) -> Iterator[None]:
    """Errors inside the block become a ``SavedPartError`` naming ``part``."""
    try:
        yield
    except SavedPartError:
        raise
    except Exception as err:  # any decoder's error: msgpack, safetensors, JSON, HF, torch
        raise SavedPartError(part, describe(err)) from err


def describe(err: BaseException) -> str:
    """An exception as one line: its type and its first line of message."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {message}" if message else type(err).__name__
