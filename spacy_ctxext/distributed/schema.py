"""Arrow schemas shared by the actor (which produces rows) and the store (which writes them).

One place, so a batch that fails on every doc still has the columns and types of a batch
that succeeds: Parquet shards written by different batches must concatenate.
"""

import pyarrow as pa

# What the driver hands to Ray: ids are strings because JSONL ids may mix ints and strings.
INPUT = pa.schema([("id", pa.string()), ("text", pa.large_string()), ("meta", pa.string())])

ENTITY_FIELDS = [
    ("start_char", pa.int64()),
    ("end_char", pa.int64()),
    ("label", pa.string()),
    ("text", pa.string()),
    ("score", pa.float64()),  # null when the pipeline gives no span-group scores
]

MANIFEST = pa.schema(
    [
        ("id", pa.string()),
        ("n_chars", pa.int64()),
        ("n_tokens", pa.int64()),  # null for a failed doc: it was never tokenized by the run
        ("n_entities", pa.int64()),
        ("status", pa.string()),  # "ok" or "error"
        ("error", pa.string()),
        ("meta", pa.string()),  # the input's meta, as JSON
    ]
)

# The actor's output: one row per doc, its entities nested, its Doc as DocBin bytes.
RESULT = pa.schema(
    list(MANIFEST)
    + [
        pa.field("entities", pa.list_(pa.struct(ENTITY_FIELDS))),
        pa.field("docbin", pa.binary()),
    ]
)

ENTITIES = pa.schema([("id", pa.string())] + ENTITY_FIELDS)
