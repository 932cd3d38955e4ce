"""The evaluation command line: scores a pipeline on gold docs
(``spacy_ctxext.scoring.evaluate``), prints the text report and writes the JSON with the
report beside it.

    python -m spacy_ctxext.cli.evaluate MODEL DATA.spacy [--output NAME.json] [--seen TRAIN.spacy]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..io_atomic import OutputWriteError, write_text
from ..scoring.evaluate import PROTOCOLS, evaluate_pipeline
from ..scoring.text_report import format_results

# `spacy ctxext evaluate` passes its own.
PROG = "python -m spacy_ctxext.cli.evaluate"


def main(argv: Optional[Sequence[str]] = None, prog: str = PROG) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score a pipeline's entities on gold docs: raw text first, gold tokens after.",
    )
    parser.add_argument("model", help="pipeline name or path (spacy.load)")
    parser.add_argument("data", help="gold .spacy DocBin")
    parser.add_argument("--output", "-o", help="JSON file to write; text report goes to .txt")
    parser.add_argument("--gpu-id", "-g", type=int, default=-1)
    parser.add_argument("--batch-size", "-b", type=int, default=8)
    parser.add_argument("--seen", help="training .spacy: also score entities unseen in it")
    parser.add_argument(
        "--protocols",
        default=",".join(PROTOCOLS),
        help="comma-separated, the first one reported first: " + ", ".join(PROTOCOLS),
    )
    args = parser.parse_args(argv)
    if args.output and Path(args.output).suffix == ".txt":
        parser.error("--output is the JSON file; the .txt report is written beside it")
    result = evaluate_pipeline(
        args.model,
        args.data,
        batch_size=args.batch_size,
        gpu_id=args.gpu_id,
        seen=args.seen,
        protocols=[name.strip() for name in args.protocols.split(",") if name.strip()],
    )
    text = format_results(result)
    print(text)
    if args.output:
        output = Path(args.output)
        # The report first: the JSON is what scripts read, so it appears last, whole.
        try:
            write_text(output.with_suffix(".txt"), text)
            write_text(output, json.dumps(result, indent=2) + "\n")
        except OutputWriteError as err:
            raise SystemExit(f"error: {err}") from None
        print(f"wrote {output} and {output.with_suffix('.txt')}")
    return result


if __name__ == "__main__":
    main()
