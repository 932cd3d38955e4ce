"""Optional dependencies: spacy-transformers is an extra, needed only by the span getter
for a stock ``transformer`` component and by the anchor of the benchmark and the study."""

import importlib
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Optional

SPACY_TRANSFORMERS_INSTALL = 'pip install "spacy-ctxext[spacy-transformers]"'


def import_spacy_transformers(needed_for: str) -> ModuleType:
    """spacy-transformers (which registers the ``transformer`` factory), or an ImportError
    that says what needs it and how to install it."""
    try:
        return importlib.import_module("spacy_transformers")
    except ImportError as err:
        raise ImportError(
            f"{needed_for} needs spacy-transformers, which is not installed: "
            f"{SPACY_TRANSFORMERS_INSTALL} (spacy-transformers 1.4 pins transformers "
            "< 4.53.3, so install it in its own environment)."
        ) from err


def installed_version(distribution: str) -> Optional[str]:
    """The installed version of ``distribution``, or None where it is not installed."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None
