"""`python -m spacy_ctxext.evaluate`: see ``spacy_ctxext.cli.evaluate``."""

from .cli.evaluate import main

if __name__ == "__main__":
    main()
