"""`python -m spacy_ctxext.annotate`: see ``spacy_ctxext.cli.annotate``."""

from .cli.annotate import main

if __name__ == "__main__":
    main()
