"""Warnings shown once per process: a training run plans thousands of batches, and one
warning with its counts says what there is to say."""

import warnings
from typing import Type


class WarnOnce:
    """One warning category, shown the first time ``warn`` is called and never again
    in this process (a fresh instance starts over: tests replace the module's one)."""

    def __init__(self, category: Type[Warning]) -> None:
        self.category = category
        self.shown = False

    def warn(self, message: str, stacklevel: int = 2) -> None:
        """Show ``message`` unless this warning was shown before; ``stacklevel`` as for
        ``warnings.warn``, counted from the caller of this method."""
        if self.shown:
            return
        self.shown = True
        warnings.warn(message, self.category, stacklevel=stacklevel + 1)
