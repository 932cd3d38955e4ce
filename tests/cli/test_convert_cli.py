"""spacy_ctxext.training.conll on small synthetic files: CoNLL (IOB1/IOB2) to one Doc per
document, repairs with one warning, errors that name the file and line."""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from util import REPO

from spacy_ctxext.cli.convert import main
from spacy_ctxext.training.conll import ConllWarning, count_docbin, read_conll


@pytest.fixture(scope="module")
def vocab():
    return spacy.blank("en").vocab


def write(tmp_path: Path, text: str, name: str = "sample.conll") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf8")
    return path


def ents(doc):
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


def read_all(path: Path, vocab, **kwargs):
    """Read a file while recording ConllWarnings; returns (docs, warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = list(read_conll(path, vocab, **kwargs))
    return docs, [str(w.message) for w in caught if issubclass(w.category, ConllWarning)]


def test_both_docstart_spellings(tmp_path, vocab):
    path = write(
        tmp_path,
        "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
        "-DOCSTART- -X- -X- O\n\nJapan NNP I-NP I-LOC\n\n",
    )
    docs, caught = read_all(path, vocab)
    assert [[t.text for t in doc] for doc in docs] == [["EU", "rejects"], ["Japan"]]
    assert [ents(doc) for doc in docs] == [[(0, 1, "ORG")], [(0, 1, "LOC")]]
    assert caught == []


def test_iob1_b_splits_same_type_neighbours(tmp_path, vocab):
    # IOB1: "I-PER I-PER B-PER" is a two-token PER directly followed by another PER.
    path = write(tmp_path, "-DOCSTART- -X- O O\n\nA x x I-PER\nB x x I-PER\nC x x B-PER\nD x x O\n")
    (doc,), caught = read_all(path, vocab)
    assert ents(doc) == [(0, 2, "PER"), (2, 3, "PER")]
    assert caught == []


def test_iob1_type_change_is_valid_without_warning(tmp_path, vocab):
    # CoNLL-2003 train has 173 of these: "I-MISC I-PER" is two entities, not an error.
    path = write(tmp_path, "Chinese x x I-MISC\nLi x x I-PER\nPeng x x I-PER\nsaid x x O\n")
    (doc,), caught = read_all(path, vocab)
    assert ents(doc) == [(0, 1, "MISC"), (1, 3, "PER")]
    assert caught == []


def test_iob2_input(tmp_path, vocab):
    path = write(
        tmp_path, "-DOCSTART- O\n\nMr B-PER\nDarcy I-PER\nin O\nBath B-GPE\nMeryton B-GPE\n"
    )
    (doc,), caught = read_all(path, vocab, scheme="iob2")
    assert ents(doc) == [(0, 2, "PER"), (3, 4, "GPE"), (4, 5, "GPE")]
    assert caught == []


def test_plain_io_and_entities_stop_at_blank_lines(tmp_path, vocab):
    path = write(tmp_path, "New I-LOC\nYork I-LOC\n\nYork I-LOC\nis O\n")
    (doc,), _ = read_all(path, vocab)
    assert ents(doc) == [(0, 2, "LOC"), (2, 3, "LOC")]
    assert [len(sent) for sent in doc.sents] == [2, 2]


def test_i_of_other_type_is_repaired_with_one_warning(tmp_path, vocab):
    text = "-DOCSTART- O\n\nJohn B-PER\nParis I-LOC\n\n-DOCSTART- O\n\nX B-ORG\nY I-PER\nZ I-PER\n"
    path = write(tmp_path, text, name="broken.conll")
    docs, caught = read_all(path, vocab)
    assert ents(docs[0]) == [(0, 1, "PER"), (1, 2, "LOC")]
    assert ents(docs[1]) == [(0, 1, "ORG"), (1, 3, "PER")]
    assert len(caught) == 1
    assert "repaired 2 " in caught[0] and "broken.conll" in caught[0]


def test_declared_iob2_counts_i_after_o(tmp_path, vocab):
    path = write(tmp_path, "a x x I-PER\nb x x O\nc x x I-LOC\nd x x B-LOC\n")
    (doc,), caught = read_all(path, vocab, scheme="iob2")
    assert ents(doc) == [(0, 1, "PER"), (2, 3, "LOC"), (3, 4, "LOC")]
    assert len(caught) == 1 and "repaired 2 " in caught[0]
    assert read_all(path, vocab, scheme="iob1")[1] == []


def test_wrong_column_count_names_file_and_line(tmp_path, vocab):
    path = write(tmp_path, "-DOCSTART- O\n\nA x x O\nB x x O\n\nC x O\n", name="cols.conll")
    with pytest.raises(ValueError, match=r"cols\.conll:6: expected 4 columns.*got 3"):
        list(read_conll(path, vocab))


def test_tokens_may_hold_nbsp_and_tab_separated_ones_spaces(tmp_path, vocab):
    spaced = write(tmp_path, "a\xa0b B-PER\n\xa0 O\nc O\n", name="nbsp.conll")
    docs, _ = read_all(spaced, vocab)
    assert [t.text for t in docs[0]] == ["a\xa0b", "\xa0", "c"]
    tabbed = write(tmp_path, "New York\tB-LOC\nis\tO\n", name="tabs.conll")
    docs, _ = read_all(tabbed, vocab)
    assert [t.text for t in docs[0]] == ["New York", "is"] and ents(docs[0]) == [(0, 1, "LOC")]


def test_file_without_tokens_warns(tmp_path, vocab):
    docs, messages = read_all(write(tmp_path, "\n\n-DOCSTART- O\n\n", name="blank.conll"), vocab)
    assert docs == [] and any("blank.conll: no token lines" in m for m in messages)


def test_single_column_file_is_rejected(tmp_path, vocab):
    path = write(tmp_path, "just\nwords\n", name="one.conll")
    with pytest.raises(ValueError, match=r"one\.conll:1: expected at least 2 columns"):
        list(read_conll(path, vocab))


@pytest.mark.parametrize("tag", ["E-PER", "S-LOC", "B-", "PER", "i-PER"])
def test_unknown_tag_names_file_line_and_tag(tmp_path, vocab, tag):
    path = write(tmp_path, f"A O\nB {tag}\n", name="tags.conll")
    with pytest.raises(ValueError, match=rf"tags\.conll:2: unknown NER tag '{tag}'"):
        list(read_conll(path, vocab))


def test_unknown_scheme_is_rejected(tmp_path, vocab):
    with pytest.raises(ValueError, match="scheme"):
        list(read_conll(write(tmp_path, "A O\n"), vocab, scheme="iobes"))


def test_file_without_docstart_is_one_doc(tmp_path, vocab):
    path = write(tmp_path, "A I-PER\nB O\n\nC O\n\n\nD I-LOC\n")
    docs, caught = read_all(path, vocab)
    assert len(docs) == 1 and len(docs[0]) == 4
    assert [[t.text for t in s] for s in docs[0].sents] == [["A", "B"], ["C"], ["D"]]
    assert caught == []


def test_empty_documents_are_dropped_with_a_count(tmp_path, vocab):
    text = "-DOCSTART- O\n\n-DOCSTART- O\n\nA O\n\n-DOCSTART- O\n\n\n"
    path = write(tmp_path, text, name="empty.conll")
    docs, caught = read_all(path, vocab)
    assert [[t.text for t in doc] for doc in docs] == [["A"]]
    assert len(caught) == 1 and "dropped 2 empty" in caught[0] and path.name in caught[0]


def test_convert_main_and_round_trip(tmp_path, capsys):
    source = write(tmp_path, "-DOCSTART- O\n\nMr B-PER\nDarcy I-PER\n\nleft O\n")
    output = tmp_path / "out" / "sample.spacy"
    main([str(source), str(output), "--lang", "en"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "1 docs, 2 sentences, 3 tokens, 1 entities" in printed[0]
    expected = {
        "docs": 1,
        "sentences": 2,
        "tokens": 3,
        "entities": 1,
        "entities_by_label": {"PER": 1},
    }
    assert count_docbin(output) == expected
    doc = next(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    assert doc.text == "Mr Darcy left" and ents(doc) == [(0, 2, "PER")]
    assert [s.text for s in doc.sents] == ["Mr Darcy", "left"]


@pytest.mark.slow
@pytest.mark.parametrize("command", [["spacy_ctxext.cli.convert"], ["spacy", "ctxext", "convert"]])
def test_command_line_runs_as_module_and_spacy_command(tmp_path, command):
    source = write(tmp_path, "A I-PER\n")
    output = tmp_path / "a.spacy"
    run = subprocess.run(
        [sys.executable, "-m", *command, str(source), str(output)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    assert "1 docs" in run.stdout and output.is_file()


# --- IOB1 and IOB2 encodings of the same spans decode identically ------------------------------

segment = st.tuples(st.sampled_from([None, "PER", "LOC"]), st.integers(1, 3))
sentences_strategy = st.lists(st.lists(segment, min_size=1, max_size=5), min_size=1, max_size=4)


def encode(sentences):
    """Write segments as IOB1 and IOB2 files' text, and return the expected spans."""
    iob1, iob2, spans, position = [], [], [], 0
    for sentence in sentences:
        previous = None
        for label, length in sentence:
            for i in range(length):
                if label is None:
                    iob1.append("O")
                    iob2.append("O")
                else:
                    starts_after_same = i == 0 and previous == label
                    iob1.append(("B-" if starts_after_same else "I-") + label)
                    iob2.append(("B-" if i == 0 else "I-") + label)
            if label is not None:
                spans.append((position, position + length, label))
            previous, position = label, position + length
        iob1.append("")
        iob2.append("")
    return as_lines(iob1), as_lines(iob2), spans


def as_lines(tags):
    return "".join(f"w {tag}\n" if tag else "\n" for tag in tags)


@pytest.mark.slow  # hypothesis
@settings(max_examples=60, deadline=None)
@given(sentences=sentences_strategy)
def test_iob1_and_iob2_give_the_same_spans(tmp_path_factory, vocab, sentences):
    iob1_text, iob2_text, spans = encode(sentences)
    folder = tmp_path_factory.mktemp("prop")
    (doc1,), _ = read_all(write(folder, iob1_text, "a.conll"), vocab)
    (doc2,), caught = read_all(write(folder, iob2_text, "b.conll"), vocab, scheme="iob2")
    assert ents(doc1) == ents(doc2) == spans
    assert caught == []  # correct IOB2 never needs a repair


def test_bom_and_crlf_read_as_a_clean_file(tmp_path, vocab):
    text = "-DOCSTART- O\n\nJohn B-PER\nSmith I-PER\nflew O\n\nParis B-LOC\n"
    clean, _ = read_all(write(tmp_path, text, "clean.conll"), vocab)
    hostile = tmp_path / "hostile.conll"
    hostile.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf8"))
    docs, messages = read_all(hostile, vocab)
    assert [d.text for d in docs] == [d.text for d in clean] == ["John Smith flew Paris"]
    assert [ents(d) for d in docs] == [ents(d) for d in clean] and messages == []


def test_conll_that_is_not_utf8_names_file_and_line(tmp_path, vocab):
    path = tmp_path / "latin1.conll"
    path.write_bytes(b"John B-PER\n" + "Zürich B-LOC\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{path}:2: not UTF-8 .*re-encode"):
        list(read_conll(path, vocab))
