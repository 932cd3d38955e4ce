"""The command lines: ``convert``, ``evaluate``, ``annotate`` and ``gazetteer``, each run as
``python -m spacy_ctxext.cli.NAME`` or, through the ``spacy_cli`` entry point
(``spacy_app``), as ``spacy ctxext NAME``. The Ray runner and the benchmark are packages of
their own: ``python -m spacy_ctxext.distributed``, ``python -m spacy_ctxext.benchmark``."""
