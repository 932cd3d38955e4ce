"""Reading without a cluster: which files an input names, how a file becomes docs and ids."""

import pytest

pytest.importorskip("ray.data")

import pyarrow as pa  # noqa: E402  (after the skip: pyarrow comes with ray[data])
import pyarrow.parquet as pq  # noqa: E402
from ray_util import (  # noqa: E402
    binary_files,
    corpus_texts,
    parse_kwargs,
    write_jsonl,
    write_parquet,
    write_txt,
)

from spacy_ctxext.distributed import schema  # noqa: E402
from spacy_ctxext.distributed.reading.parse import parse_file, parse_files  # noqa: E402
from spacy_ctxext.distributed.reading.sources import InputError, match_parts, resolve  # noqa: E402


@pytest.fixture
def shards(tmp_path):
    """Two JSONL files without ids, a Parquet and two .txt in subfolders."""
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    write_jsonl(root / "a" / "one.jsonl", corpus_texts(3), ids=False)
    write_jsonl(root / "a" / "two.jsonl", corpus_texts(2), ids=False)
    write_parquet(root / "three.parquet", corpus_texts(2), ids=False)
    write_txt(root / "b", corpus_texts(2, prefix="t"))
    (root / "a" / "notes.md").write_text("not a doc")
    return root


def test_file_folder_and_glob_name_the_files(shards):
    single = resolve(str(shards / "a" / "one.jsonl"))
    assert single.single and single.sources == ["one.jsonl"]
    folder = resolve(str(shards / "a"))
    assert not folder.single and folder.sources == ["one.jsonl", "two.jsonl"]
    assert resolve(str(shards / "**" / "*.txt")).sources == ["b/t0.txt", "b/t1.txt"]
    assert resolve(str(shards / "*" / "*.jsonl")).sources == ["a/one.jsonl", "a/two.jsonl"]
    every = resolve(str(shards / "**"))
    assert len(every.sources) == 5 and every.total_bytes == sum(every.sizes) > 0
    assert resolve(f"file://{shards}/*.parquet").sources == ["three.parquet"]


def test_bad_inputs_say_what_is_wrong(shards, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        resolve(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match="matches no"):
        resolve(str(shards / "*.csv"))
    (shards / "b" / "x.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(InputError, match=r"several kinds \(1 \.jsonl, 2 \.txt\)"):
        resolve(str(shards / "b"))
    with pytest.raises(InputError, match="expected a .jsonl"):
        resolve(str(shards / "a" / "notes.md"))


def test_glob_components():
    assert match_parts(("a", "b", "c.txt"), ("**", "*.txt"))
    assert match_parts(("c.txt",), ("**", "*.txt"))
    assert not match_parts(("a", "c.txt"), ("*.txt",))
    assert match_parts(("a", "c.txt"), ("?", "c.*"))


def test_default_ids_by_input_shape():
    data = b'{"text": "a"}\n\n{"text": "b", "id": 7}\n{"text": "c", "meta": {"k": 1}}\n'
    assert parse_file(data, "x.jsonl", single=True)[0] == ["1", "7", "4"]  # line numbers
    ids, texts, metas = parse_file(data, "s/x.jsonl", single=False)
    assert ids == ["s/x.jsonl:1", "7", "s/x.jsonl:4"] and texts == ["a", "b", "c"]
    assert metas == [None, None, '{"k": 1}']
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"text": ["p", "q"], "meta": [{"k": 1}, None]}), sink)
    parquet = sink.getvalue().to_pybytes()
    assert parse_file(parquet, "y.parquet", single=True)[0] == ["1", "2"]
    assert parse_file(parquet, "y.parquet", single=False)[0] == ["y.parquet:1", "y.parquet:2"]
    assert parse_file("é\r\n".encode(), "d/z.txt", single=False) == (["d/z.txt"], ["é\r\n"], [None])


DUPLICATED = b'{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n'


def test_bad_files_name_file_and_line():
    with pytest.raises(InputError, match=r"x.jsonl: line 2: invalid JSON"):
        parse_file(b'{"text": "a"}\n{oops\n', "x.jsonl", single=True)
    with pytest.raises(InputError, match=r"x.jsonl: 1 duplicate ids"):
        list(parse_files(binary_files({"x.jsonl": DUPLICATED}), **parse_kwargs()))
    with pytest.raises(InputError, match="not UTF-8"):
        parse_file(b"\xff", "z.txt", single=False)
    with pytest.raises(InputError, match="not a readable Parquet"):
        parse_file(b"garbage", "p.parquet", single=False)


def test_parse_leaves_out_done_ids_and_counts_the_file():
    data = b'{"text": "a"}\n{"text": "b"}\n{"text": "c"}\n'
    done = {"f.jsonl": {"f.jsonl:2"}}
    (table,) = parse_files(binary_files({"f.jsonl": data}), **parse_kwargs(done=done))
    assert table.schema == schema.INPUT
    assert table.column("id").to_pylist() == ["f.jsonl:1", "f.jsonl:3"]
    assert set(table.column("file_docs").to_pylist()) == {3}
    assert set(table.column("file_bytes").to_pylist()) == {len(data)}
