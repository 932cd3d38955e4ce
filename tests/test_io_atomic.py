"""Atomic writes (issue #25): a failed or interrupted write leaves no partial file under a
final name, and the commands say which file and what to do."""

import errno

import pytest
import spacy
from util import make_ruler_nlp, write_gold

from spacy_ctxext.cli import convert, evaluate, gazetteer
from spacy_ctxext.io_atomic import OutputWriteError, temporary_name, write_bytes


def full_disk(*args):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    write_bytes(target, b"old, complete")
    monkeypatch.setattr("spacy_ctxext.io_atomic._flush_to_disk", full_disk)
    with pytest.raises(OutputWriteError, match=rf"Could not write {target}: No space left"):
        write_bytes(target, b"new")
    assert target.read_bytes() == b"old, complete" and not temporary_name(target).exists()


@pytest.fixture
def inputs(tmp_path):
    conll = tmp_path / "train.conll"
    conll.write_text("-DOCSTART- O\n\nJohn B-PER\nSmith I-PER\nflew O\n", encoding="utf8")
    nlp = make_ruler_nlp()
    nlp.to_disk(tmp_path / "ruler")
    return {
        "conll": conll,
        "gold": write_gold(spacy.blank("en"), tmp_path / "gold.spacy"),
        "ruler": tmp_path / "ruler",
    }


COMMANDS = {
    "convert": (convert.main, lambda i, out: [str(i["conll"]), str(out)], "out.spacy"),
    "gazetteer": (gazetteer.main, lambda i, out: [str(i["gold"]), str(out)], "out.jsonl"),
    "evaluate": (
        evaluate.main,
        lambda i, out: [str(i["ruler"]), str(i["gold"]), "--output", str(out)],
        "out.json",
    ),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_full_disk_names_the_file_and_leaves_no_partial_output(name, inputs, tmp_path, monkeypatch):
    main, argv, filename = COMMANDS[name]
    out = tmp_path / "results" / filename
    monkeypatch.setattr("spacy_ctxext.io_atomic._flush_to_disk", full_disk)
    with pytest.raises(SystemExit) as caught:
        main(argv(inputs, out))
    message = str(caught.value.code)
    assert message.startswith("error: Could not write ") and "No space left on device" in message
    assert str(out.with_suffix(".txt") if name == "evaluate" else out) in message
    assert "Free disk space" in message
    assert not out.exists() and not list(out.parent.glob(".*.tmp"))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_interrupted_write_leaves_the_earlier_output_whole(name, inputs, tmp_path, monkeypatch):
    main, argv, filename = COMMANDS[name]
    out = tmp_path / filename
    main(argv(inputs, out))
    before = out.read_bytes()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("spacy_ctxext.io_atomic._flush_to_disk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(argv(inputs, out))
    assert out.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))
