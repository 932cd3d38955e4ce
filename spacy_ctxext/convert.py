"""`python -m spacy_ctxext.convert`: see ``spacy_ctxext.training.conll``."""

from .training.conll import main

if __name__ == "__main__":
    main()
