"""spacy-ctxext: long-document NER for spaCy.

Kept import-light on purpose: spaCy imports every ``spacy_factories`` entry
point on each ``Language()``, so torch and transformers load only when a
ctx_ner model is actually built.
"""

from .pipeline.parallel_docs import docs_from_texts  # spaCy and multiprocessing only

__all__ = ["docs_from_texts"]
__version__ = "0.1.0"
