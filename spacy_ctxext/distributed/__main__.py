"""Runs ``python -m spacy_ctxext.distributed``, annotation with Ray Data (distributed/cli.py)."""

from .cli import main

main()
