"""The spaCy-facing pieces: the ``ctx_ner`` component, its gold targets, the span getter
for spacy-transformers, and feeding it (planning the next batch in a thread, tokenizing in
worker processes). Torch-free: spaCy imports the factory on every ``Language()``."""

from .ctx_ner import DEFAULT_SPANS_KEY, CtxNER, make_ctx_ner

__all__ = ["CtxNER", "DEFAULT_SPANS_KEY", "make_ctx_ner"]
