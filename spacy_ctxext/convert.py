"""`python -m spacy_ctxext.convert`: see ``spacy_ctxext.cli.convert``."""

from .cli.convert import main

if __name__ == "__main__":
    main()
