"""Annotating raw text outside spaCy's own commands: reading the inputs (JSONL, folders of
``.txt``), entity records with their confidences, and the displaCy page."""
