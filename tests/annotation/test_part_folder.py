"""The parts protocol both annotating command lines write by: a part is committed by its
manifest, written last; a rerun drops what no manifest committed."""

import pytest

from spacy_ctxext.annotation.part_folder import PartFolder
from spacy_ctxext.io_atomic import temporary_name

SUFFIXES = {"entities": ".jsonl", "docs": ".spacy", "manifest": ".jsonl"}


def recording(written, kind):
    """A writer that records the order in which kinds are written."""

    def write(tmp):
        written.append(kind)
        tmp.write_text(kind, encoding="utf8")

    return write


def test_the_manifest_is_written_last_whatever_the_order_given(tmp_path):
    parts, written = PartFolder(tmp_path, SUFFIXES), []
    files = {kind: recording(written, kind) for kind in ("manifest", "docs", "entities")}
    parts.write_part("part-a", files)
    assert written == ["docs", "entities", "manifest"]
    assert parts.part_names("manifest") == ["part-a"]
    parts.write_part("part-b", {"entities": b"{}\n", "manifest": b'{"id": "1"}\n'})
    assert parts.path("entities", "part-b").read_bytes() == b"{}\n"
    assert parts.part_paths("manifest") == [parts.path("manifest", n) for n in ("part-a", "part-b")]


def test_a_part_stopped_before_its_manifest_is_dropped(tmp_path):
    parts = PartFolder(tmp_path, SUFFIXES)
    parts.write_part("part-a", {"entities": b"a", "docs": b"a", "manifest": b"a"})

    def crash(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        parts.write_part("part-b", {"entities": b"b", "docs": crash, "manifest": b"b"})
    assert parts.part_names("entities") == ["part-a", "part-b"]
    assert parts.part_names("manifest") == ["part-a"]
    assert not temporary_name(parts.path("docs", "part-b")).exists()
    temporary_name(parts.path("manifest", "part-c")).write_bytes(b"half")
    assert parts.drop_uncommitted() == [parts.path("entities", "part-b")]
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "docs",
        "entities",
        "manifest",
        "part-a.jsonl",
        "part-a.jsonl",
        "part-a.spacy",
    ]


def test_files_not_named_as_parts_are_left_alone(tmp_path):
    parts = PartFolder(tmp_path, SUFFIXES, name_pattern=r"part-\d{6}")
    parts.write_part("part-000000", {"entities": b"0", "manifest": b"0"})
    for name in ("part-x.jsonl", "part-000001.spacy", "notes.txt"):
        (tmp_path / "entities" / name).write_bytes(b"not a part")
    assert parts.part_names("entities") == ["part-000000"]
    assert parts.drop_uncommitted() == []
    assert len(list((tmp_path / "entities").iterdir())) == 4


def test_remove_part_removes_every_kind_of_file(tmp_path):
    parts = PartFolder(tmp_path, SUFFIXES)
    parts.write_part("part-a", {"entities": b"a", "manifest": b"a"})
    parts.write_part("part-b", {"entities": b"b", "docs": b"b", "manifest": b"b"})
    parts.remove_part("part-a")
    assert [parts.part_names(kind) for kind in SUFFIXES] == [["part-b"]] * 3


def test_a_folder_or_part_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"needs a 'manifest' kind.*\['docs', 'entities'\]"):
        PartFolder(tmp_path, {"entities": ".jsonl", "docs": ".spacy"})
    with pytest.raises(ValueError, match="part-a has no 'manifest' file"):
        PartFolder(tmp_path, SUFFIXES).write_part("part-a", {"entities": b"a"})
    assert not (tmp_path / "entities").exists()
