"""Evaluate a trained ctx_ner pipeline with other window settings, without retraining.

    python scripts/window_swap.py MODEL DATA.spacy --window 512 --context 64 [--extend copy]
    python scripts/window_swap.py MODEL DATA.spacy --cpu-precision bf16
    python scripts/window_swap.py MODEL DATA.spacy --window 258 --retrieved-passages 2 \
        --passage-pieces 32 --output results/retrieval-....json

Shows whether a model's score comes from its weights or from the positions its windows
use: e.g. a model trained on 1,024-wordpiece windows scored with 512-wordpiece ones, or
a 512-trained model given a table grown to 1,024 rows ("copy"/"interpolate") zero-shot,
or the same model run in bfloat16 on the CPU instead of fp32, or reading retrieved
passages (``retrieved_passages``) it was not trained with. Scored like
``spacy_ctxext.scoring.evaluate`` on raw text (each doc's text through the pipeline);
``--output`` keeps the whole result, per-document counts included, for
``scripts/study.py paired``.
"""

import argparse
import json
from pathlib import Path

import spacy

from spacy_ctxext.models.encoder_layer import apply_usage_settings, get_net
from spacy_ctxext.models.pytorch.positions import extend_position_embeddings
from spacy_ctxext.models.settings import CPU_PRECISIONS, EncoderSettings
from spacy_ctxext.scoring.evaluate import evaluate_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--window", type=int, help="default: the trained window")
    parser.add_argument("--context", type=int, help="default: the trained context")
    parser.add_argument("--extend", choices=["copy", "interpolate"], help="grow the table")
    parser.add_argument(
        "--isolate-sentences",
        action=argparse.BooleanOptionalAction,
        help="one window per sentence, or not (default: as trained)",
    )
    parser.add_argument(
        "--cpu-precision", choices=CPU_PRECISIONS, help="how the encoder computes on CPU"
    )
    parser.add_argument("--retrieved-passages", type=int, help="passages each window reads")
    parser.add_argument("--passage-pieces", type=int, help="wordpieces per passage at most")
    parser.add_argument("--seen", help="training .spacy: also score unseen entities")
    parser.add_argument("--output", help="JSON file for the whole result and the settings used")
    parser.add_argument("--component", default="ctx_ner")
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    encoder = nlp.get_pipe(args.component).model.layers[0]
    trained = EncoderSettings.of(encoder)
    if args.extend:
        target = args.window or trained.window
        extend_position_embeddings(get_net(encoder).encoder, target, args.extend)
    usage = {"window": args.window, "context": args.context, "cpu_precision": args.cpu_precision}
    usage["isolate_sentences"] = args.isolate_sentences
    usage["retrieved_passages"] = args.retrieved_passages
    usage["passage_pieces"] = args.passage_pieces
    try:
        apply_usage_settings(encoder, {k: v for k, v in usage.items() if v is not None})
    except ValueError as err:
        parser.error(f"{err} Here: --extend, or a smaller --window / --context.")
    used = EncoderSettings.of(encoder)
    result = evaluate_pipeline(nlp, args.data, seen=args.seen, protocols=("raw_text",))
    scores = result["spacy"]
    if args.output:
        result["usage"] = {key: getattr(used, key) for key in EncoderSettings.USAGE}
        result["model"] = args.model
        result["eval_split"] = "/".join(Path(args.data).with_suffix("").parts[-2:])
        Path(args.output).write_text(json.dumps(result, indent=2))
    passages = ""
    if used.retrieved_passages:
        passages = f", {used.retrieved_passages} passages of {used.passage_pieces} pieces"
    print(
        f"{args.model}: trained window/context {trained.window}/{trained.context}, scored "
        f"with {used.window}/{used.context}"
        f"{' + ' + args.extend if args.extend else ''}"
        f"{', sentences isolated' if used.isolate_sentences else ''}"
        f"{passages}"
        f", CPU {used.cpu_precision}: "
        f"ents_f {100 * scores['ents_f']:.2f}"
    )


if __name__ == "__main__":
    main()
