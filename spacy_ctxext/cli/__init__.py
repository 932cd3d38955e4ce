"""The command lines (``python -m spacy_ctxext.convert``, ``.evaluate``, ``.annotate``,
``.gazetteer``); each top-level module of that name hands on to its ``main``."""
