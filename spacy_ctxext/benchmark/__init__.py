"""Throughput and memory benchmark: ``python -m spacy_ctxext.benchmark --help``."""
