"""`python -m spacy_ctxext.gazetteer`: see ``spacy_ctxext.cli.gazetteer``."""

from .cli.gazetteer import main

if __name__ == "__main__":
    main()
