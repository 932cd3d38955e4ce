"""Scores as users get them: raw text first, spaCy's scorer and seqeval, consistency,
unseen entities, and where in a document entities are found."""
