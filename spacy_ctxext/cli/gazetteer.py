"""The gazetteer command line: an entity_ruler pattern file from a training split's own
entity strings (``spacy_ctxext.training.gazetteer``).

    python -m spacy_ctxext.cli.gazetteer TRAIN.spacy PATTERNS.jsonl [--min-count N]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import srsly

from ..io_atomic import OutputWriteError, atomic_path
from ..training.gazetteer import gazetteer_patterns
from ..training.readers import read_docbin

# `spacy ctxext gazetteer` passes its own.
PROG = "python -m spacy_ctxext.cli.gazetteer"


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> List[Dict[str, str]]:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a gazetteer (entity_ruler JSONL) of a DocBin's entity strings.",
    )
    parser.add_argument("docs", type=Path, help="annotated .spacy DocBin (a training split)")
    parser.add_argument("output", type=Path, help="JSONL patterns file to write")
    parser.add_argument("--min-count", type=int, default=1, help="occurrences to keep a string")
    args = parser.parse_args(argv)
    docs = list(read_docbin(args.docs))
    if not any(doc.ents for doc in docs):
        parser.error(f"{args.docs} has no entities to build a gazetteer from")
    rows = gazetteer_patterns(docs, args.min_count)
    try:
        with atomic_path(args.output) as tmp:
            srsly.write_jsonl(tmp, rows)
    except OutputWriteError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"wrote {len(rows)} patterns from {len(docs)} docs to {args.output}")
    return rows


if __name__ == "__main__":
    main()
