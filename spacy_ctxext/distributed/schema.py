"""Arrow schemas shared by the readers, the actor (which produces rows) and the store.

One place, so a batch that fails on every doc still has the columns and types of a batch
that succeeds: Parquet shards written by different batches must concatenate.
"""

import pyarrow as pa

# What the read tasks produce (``parse``): ids are strings because JSONL ids may mix ints
# and strings; ``source`` is the input file (relative to the input), ``file_docs`` its number
# of docs and ``file_bytes`` its size: resume skips a file whose docs are all committed,
# unless its size changed.
SOURCE_FIELDS = [("source", pa.string()), ("file_docs", pa.int64()), ("file_bytes", pa.int64())]
INPUT = pa.schema(
    [("id", pa.string()), ("text", pa.large_string()), ("meta", pa.string())] + SOURCE_FIELDS
)

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
    + SOURCE_FIELDS
)

# The actor's rows before they are written: one row per doc, its entities nested.
RESULT = pa.schema(list(MANIFEST) + [pa.field("entities", pa.list_(pa.struct(ENTITY_FIELDS)))])

ENTITIES = pa.schema([("id", pa.string())] + ENTITY_FIELDS)
