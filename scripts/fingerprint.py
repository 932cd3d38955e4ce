"""A digest of what a saved pipeline predicts, to show a refactor changes nothing.

    python scripts/fingerprint.py MODEL DATA.spacy [--docs N]

Runs ``nlp.pipe`` over the docs' texts (raw text, as users run it) and prints one JSON
line: the sha256 of ctx_ner's tag logits, of every doc's entities (offsets and labels)
and of their confidences (``doc.spans[key].attrs["scores"]``, exact float64 reprs), with
the counts. Run it with
the code before and after a change, on the same model and data: equal digests mean
bit-identical predictions. It imports nothing of spacy_ctxext itself, so the same file
serves both checkouts.
"""

import argparse
import hashlib
import json

import spacy
from spacy.tokens import DocBin


def fingerprint(model: str, data: str, n_docs: int, spans_key: str = "ctx_ner") -> dict:
    nlp = spacy.load(model)
    texts = [doc.text for doc in DocBin().from_disk(data).get_docs(nlp.vocab)][:n_docs]
    ents, scores = hashlib.sha256(), hashlib.sha256()
    n_ents = 0
    for doc in nlp.pipe(texts, batch_size=8):
        rows = [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        n_ents += len(rows)
        ents.update(json.dumps(rows).encode())
        group = doc.spans.get(spans_key)
        values = [] if group is None else list(group.attrs.get("scores", []))
        scores.update(json.dumps([repr(float(v)) for v in values]).encode())
    return {
        "docs": len(texts),
        "entities": n_ents,
        "ents": ents.hexdigest(),
        "scores": scores.hexdigest(),
        "logits": _logits_digest(nlp, texts),
    }


def _logits_digest(nlp, texts) -> str:
    """The sha256 of the tag logits ``ctx_ner``'s model gives each doc (batches of 8)."""
    digest = hashlib.sha256()
    docs = list(nlp.pipe(texts, disable=["ctx_ner"]))
    model = nlp.get_pipe("ctx_ner").model
    for start in range(0, len(docs), 8):
        for scores in model.predict(docs[start : start + 8]):
            digest.update(model.ops.to_numpy(scores).astype("float32").tobytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--docs", type=int, default=60)
    args = parser.parse_args()
    print(json.dumps({"model": args.model, **fingerprint(args.model, args.data, args.docs)}))


if __name__ == "__main__":
    main()
