"""Evaluate a trained ctx_ner pipeline with other window settings, without retraining.

    python scripts/window_swap.py MODEL DATA.spacy --window 512 --context 64 [--extend copy]

Shows whether a model's score comes from its weights or from the positions its windows
use: e.g. a model trained on 1,024-wordpiece windows scored with 512-wordpiece ones, or
a 512-trained model given a table grown to 1,024 rows ("copy"/"interpolate") zero-shot.
Scored like ``spacy_ctxext.evaluate`` (gold tokens and sentence starts).
"""

import argparse

import spacy

from spacy_ctxext.architectures import get_net
from spacy_ctxext.evaluate import evaluate_pipeline
from spacy_ctxext.positions import extend_position_embeddings, usable_positions
from spacy_ctxext.windows import check_window_sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--window", type=int, required=True)
    parser.add_argument("--context", type=int, required=True)
    parser.add_argument("--extend", choices=["copy", "interpolate"], help="grow the table")
    parser.add_argument("--isolate-sentences", action="store_true", help="one window per sentence")
    parser.add_argument("--component", default="ctx_ner")
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    encoder = nlp.get_pipe(args.component).model.layers[0]
    net = get_net(encoder)
    if args.extend:
        extend_position_embeddings(net.encoder, args.window, args.extend)
    if args.window > usable_positions(net.encoder):
        parser.error(f"--window {args.window} exceeds the encoder's positions: add --extend")
    check_window_sizes(args.window, args.context)
    trained = (encoder.attrs["window"], encoder.attrs["context"])
    encoder.attrs.update(
        window=args.window, context=args.context, isolate_sentences=args.isolate_sentences
    )
    scores = evaluate_pipeline(nlp, args.data)["spacy"]
    print(
        f"{args.model}: trained window/context {trained[0]}/{trained[1]}, scored with "
        f"{args.window}/{args.context}{' + ' + args.extend if args.extend else ''}"
        f"{', sentences isolated' if args.isolate_sentences else ''}: "
        f"ents_f {100 * scores['ents_f']:.2f}"
    )


if __name__ == "__main__":
    main()
