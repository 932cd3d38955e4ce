"""The conversion command line: CoNLL-style NER files to spaCy ``DocBin`` files, one doc per
``-DOCSTART-`` document (``spacy_ctxext.training.conll``); a folder converts each of its
``*.conll`` files.

    python -m spacy_ctxext.cli.convert INPUT.conll|FOLDER OUTPUT.spacy|FOLDER [--scheme auto]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional

from ..io_atomic import OutputWriteError
from ..training.conll import SCHEMES, convert

# `spacy ctxext convert` passes its own.
PROG = "python -m spacy_ctxext.cli.convert"


def main(argv: Optional[List[str]] = None, prog: str = PROG) -> None:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Convert a CoNLL NER file (IOB1/IOB2, one doc per -DOCSTART-) to a DocBin.",
    )
    parser.add_argument(
        "input", type=Path, help="CoNLL file (token [columns...] NER-tag), or a folder of *.conll"
    )
    parser.add_argument("output", type=Path, help="output .spacy file, or folder for a folder")
    parser.add_argument("--lang", default="en", help="spaCy language code for the vocab")
    parser.add_argument("--scheme", default="auto", choices=SCHEMES, help="tagging scheme")
    args = parser.parse_args(argv)
    try:
        _convert(args)
    except OutputWriteError as err:
        raise SystemExit(f"error: {err}") from None


def _convert(args: argparse.Namespace) -> None:
    if not args.input.is_dir():
        convert(args.input, args.output, lang=args.lang, scheme=args.scheme)
        return
    sources = sorted(args.input.glob("*.conll"))
    if not sources:
        raise SystemExit(f"No *.conll files in {args.input}.")
    for source in sources:
        target = args.output / source.with_suffix(".spacy").name
        convert(source, target, lang=args.lang, scheme=args.scheme)


if __name__ == "__main__":
    main()
