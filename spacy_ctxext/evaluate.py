"""`python -m spacy_ctxext.evaluate`: see ``spacy_ctxext.scoring.evaluate``."""

from .scoring.evaluate import main

if __name__ == "__main__":
    main()
