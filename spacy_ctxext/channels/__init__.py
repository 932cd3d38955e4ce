"""Per-token side channels added to the input embeddings: the ``Channel`` base and the
built-in casing, attr, gazetteer and layout channels."""

from .base import Channel

__all__ = ["Channel"]
