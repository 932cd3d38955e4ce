"""Annotating raw text outside spaCy's own commands: reading the inputs (JSONL, folders of
``.txt``), entity records with their confidences, output written in committed parts (the
protocol the Ray runner shares) and the displaCy page."""
