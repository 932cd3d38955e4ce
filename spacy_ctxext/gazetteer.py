"""`python -m spacy_ctxext.gazetteer`: see ``spacy_ctxext.training.gazetteer``."""

from .training.gazetteer import main

if __name__ == "__main__":
    main()
