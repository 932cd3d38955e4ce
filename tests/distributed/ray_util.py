"""Helpers of the Ray tests: corpora in each input kind, reading an output, the reference."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import spacy
from util import TRAIN_DATA

from spacy_ctxext.distributed.config import RunConfig

SENTENCES = [text for text, _ in TRAIN_DATA]


def corpus_texts(n=12, prefix="doc"):
    """Docs of 1-6 training sentences, so batches mix lengths."""
    return {
        f"{prefix}{i}": " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 6))
        for i in range(n)
    }


def write_jsonl(path, texts, extra=None, ids=True):
    rows = [
        {**({"id": doc_id} if ids else {}), "text": text, "meta": {"n": i}}
        for i, (doc_id, text) in enumerate(texts.items())
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows + (extra or [])) + "\n", encoding="utf8")
    return path


def write_parquet(path, texts, ids=True):
    columns = {"text": list(texts.values()), "meta": [{"n": i} for i in range(len(texts))]}
    if ids:
        columns["id"] = list(texts)
    pq.write_table(pa.table(columns), path)
    return path


def write_txt(folder, texts):
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, text in texts.items():
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf8")
    return folder


def config(code_file, **overrides):
    settings = {"workers": 2, "batch_size": 3, "code": code_file, "progress": False}
    return RunConfig(**{**settings, **overrides})


def read_output(out):
    entities = pq.read_table(out / "entities").to_pylist()
    rows = pq.read_table(out / "manifest").to_pylist()
    manifest = {row["id"]: row for row in rows}
    assert len(manifest) == len(rows), "a doc is in the manifest twice"
    return entities, manifest


def by_doc(entity_rows):
    found = {}
    for row in entity_rows:
        found.setdefault(row["id"], []).append((row["start_char"], row["end_char"], row["label"]))
    return {doc_id: sorted(ents) for doc_id, ents in found.items()}


def expected_entities(model_dir, texts):
    nlp = spacy.load(model_dir)
    docs = nlp.pipe(texts.values())
    found = {
        i: sorted((e.start_char, e.end_char, e.label_) for e in d.ents) for i, d in zip(texts, docs)
    }
    return {doc_id: ents for doc_id, ents in found.items() if ents}


def binary_files(contents, base="/in"):
    """What ``read_binary_files`` hands a read task: each file's bytes and path."""
    return pa.table(
        {"bytes": list(contents.values()), "path": [f"{base}/{name}" for name in contents]}
    )


def parse_kwargs(**kw):
    """``parse_files`` options of a multi-file input under ``/in``."""
    return {"base": "/in", "single": False, **kw}
