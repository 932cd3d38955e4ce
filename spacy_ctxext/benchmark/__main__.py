"""Runs ``python -m spacy_ctxext.benchmark``, the speed benchmark (benchmark/cli.py)."""

from .cli import main

main()
