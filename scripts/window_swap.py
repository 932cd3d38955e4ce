"""Evaluate a trained ctx_ner pipeline with other window settings, without retraining.

    python scripts/window_swap.py MODEL DATA.spacy --window 512 --context 64 [--extend copy]
    python scripts/window_swap.py MODEL DATA.spacy --cpu-precision bf16

Shows whether a model's score comes from its weights or from the positions its windows
use: e.g. a model trained on 1,024-wordpiece windows scored with 512-wordpiece ones, or
a 512-trained model given a table grown to 1,024 rows ("copy"/"interpolate") zero-shot,
or the same model run in bfloat16 on the CPU (``cpu_bfloat16``) instead of fp32.
Scored like ``spacy_ctxext.scoring.evaluate`` (gold tokens and sentence starts).
"""

import argparse

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
    try:
        apply_usage_settings(encoder, {k: v for k, v in usage.items() if v is not None})
    except ValueError as err:
        parser.error(f"{err} Here: --extend, or a smaller --window / --context.")
    used = EncoderSettings.of(encoder)
    scores = evaluate_pipeline(nlp, args.data)["spacy"]
    print(
        f"{args.model}: trained window/context {trained.window}/{trained.context}, scored "
        f"with {used.window}/{used.context}"
        f"{' + ' + args.extend if args.extend else ''}"
        f"{', sentences isolated' if used.isolate_sentences else ''}"
        f", CPU {used.cpu_precision}: "
        f"ents_f {100 * scores['ents_f']:.2f}"
    )


if __name__ == "__main__":
    main()
