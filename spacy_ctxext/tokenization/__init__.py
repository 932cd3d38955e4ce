"""Wordpieces of whole docs, aligned to spaCy tokens by offsets, and the per-process
word cache (with the rules of which tokenizers it is exact for)."""
