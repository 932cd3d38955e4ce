"""Evaluate a trained ctx_ner pipeline with other window settings, without retraining.

    python scripts/window_swap.py MODEL DATA.spacy --window 512 --context 64 [--extend copy]
    python scripts/window_swap.py MODEL DATA.spacy --cpu-bf16

Shows whether a model's score comes from its weights or from the positions its windows
use: e.g. a model trained on 1,024-wordpiece windows scored with 512-wordpiece ones, or
a 512-trained model given a table grown to 1,024 rows ("copy"/"interpolate") zero-shot,
or the same model run in bfloat16 on the CPU (``cpu_bfloat16``) instead of fp32.
Scored like ``spacy_ctxext.evaluate`` (gold tokens and sentence starts).
"""

import argparse

import spacy

from spacy_ctxext.architectures import get_net, set_window_sizes
from spacy_ctxext.evaluate import evaluate_pipeline
from spacy_ctxext.positions import extend_position_embeddings


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
    parser.add_argument("--cpu-bf16", action="store_true", help="bfloat16 autocast on CPU")
    parser.add_argument("--component", default="ctx_ner")
    args = parser.parse_args()
    nlp = spacy.load(args.model)
    encoder = nlp.get_pipe(args.component).model.layers[0]
    net = get_net(encoder)
    trained = (encoder.attrs["window"], encoder.attrs["context"])
    if args.extend:
        extend_position_embeddings(net.encoder, args.window or trained[0], args.extend)
    try:
        set_window_sizes(encoder, args.window, args.context)
    except ValueError as err:
        parser.error(f"{err} Here: --extend, or a smaller --window / --context.")
    encoder.attrs.update(
        isolate_sentences=(
            encoder.attrs["isolate_sentences"]
            if args.isolate_sentences is None
            else args.isolate_sentences
        ),
        cpu_bfloat16=args.cpu_bf16,
    )
    scores = evaluate_pipeline(nlp, args.data)["spacy"]
    print(
        f"{args.model}: trained window/context {trained[0]}/{trained[1]}, scored with "
        f"{encoder.attrs['window']}/{encoder.attrs['context']}"
        f"{' + ' + args.extend if args.extend else ''}"
        f"{', sentences isolated' if encoder.attrs['isolate_sentences'] else ''}"
        f"{', CPU bfloat16' if args.cpu_bf16 else ''}: "
        f"ents_f {100 * scores['ents_f']:.2f}"
    )


if __name__ == "__main__":
    main()
