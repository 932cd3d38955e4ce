"""spacy_ctxext.cli.annotate with a blank pipeline + entity_ruler (no ctx_ner, no network)."""

import json

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin, SpanGroup
from util import REPO

from spacy_ctxext.annotation.inputs import read_input
from spacy_ctxext.annotation.records import doc_entities
from spacy_ctxext.cli.annotate import annotate, main

PATTERNS = [
    {"label": "PER", "pattern": "John Smith"},
    {"label": "LOC", "pattern": "New York"},
    {"label": "LOC", "pattern": "Paris"},
]


@Language.component("test_ctx_scores")
def copy_ents_with_scores(doc):
    """Stand-in for ctx_ner's span group: confidence 1 / entity length."""
    ents = list(doc.ents)
    doc.spans["ctx_ner"] = SpanGroup(
        doc, name="ctx_ner", spans=ents, attrs={"scores": [1.0 / len(e) for e in ents]}
    )
    return doc


def save_model(path, scores=False):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    if scores:
        nlp.add_pipe("test_ctx_scores")
    nlp.to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("annotate")
    return save_model(folder / "plain"), save_model(folder / "scores", scores=True)


def write_jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


@pytest.fixture
def jsonl(tmp_path):
    return write_jsonl(
        tmp_path / "in.jsonl",
        [
            json.dumps({"text": "John Smith flew to Paris.", "id": "a"}),
            "",
            json.dumps({"text": "Nothing here."}),
            json.dumps({"text": "New York, New York!", "id": 7}),
        ],
    )


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def test_jsonl_with_scores(models, jsonl, tmp_path):
    out = tmp_path / "out"
    counts = annotate(models[1], jsonl, out, batch_size=2)
    assert counts["docs"] == 3 and counts["entities"] == 4 and counts["seconds"] >= 0
    rows = read_jsonl(out / "entities.jsonl")
    assert [row["id"] for row in rows] == ["a", 3, 7]  # default id: the line number
    assert rows[0]["entities"] == [
        {"start_char": 0, "end_char": 10, "label": "PER", "text": "John Smith", "score": 0.5},
        {"start_char": 19, "end_char": 24, "label": "LOC", "text": "Paris", "score": 1.0},
    ]
    assert rows[1]["entities"] == []
    assert [e["start_char"] for e in rows[2]["entities"]] == [0, 10]
    docs = list(DocBin().from_disk(out / "annotations.spacy").get_docs(spacy.blank("en").vocab))
    assert [doc.user_data["id"] for doc in docs] == ["a", 3, 7]
    assert [e.text for e in docs[0].ents] == ["John Smith", "Paris"]
    assert docs[0].spans["ctx_ner"].attrs["scores"] == [0.5, 1.0]
    assert not (out / "entities.html").exists()


def test_score_null_without_span_group(models, jsonl, tmp_path):
    annotate(models[0], jsonl, tmp_path / "plain")  # no span group at all
    annotate(models[1], jsonl, tmp_path / "other", spans_key="other")  # another key
    for name in ("plain", "other"):
        entities = read_jsonl(tmp_path / name / "entities.jsonl")[0]["entities"]
        assert [e["text"] for e in entities] == ["John Smith", "Paris"]
        assert [e["score"] for e in entities] == [None, None]


def test_score_needs_same_spans():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    doc = copy_ents_with_scores(nlp("John Smith in Paris"))
    assert [e["score"] for e in doc_entities(doc)] == [0.5, 1.0]
    doc.spans["ctx_ner"] = SpanGroup(doc, spans=[doc.ents[0]], attrs={"scores": [0.3]})
    assert [e["score"] for e in doc_entities(doc)] == [None, None]
    doc.spans["ctx_ner"] = SpanGroup(doc, spans=list(doc.ents), attrs={"scores": [0.3]})
    assert [e["score"] for e in doc_entities(doc)] == [None, None]


def test_txt_folder_and_html(models, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "b.txt").write_text("Paris is nice.", encoding="utf8")
    (folder / "a.txt").write_text("John Smith lives in New York.", encoding="utf8")
    (folder / "c.txt").write_text("Nothing.", encoding="utf8")
    (folder / "notes.md").write_text("Paris", encoding="utf8")  # ignored
    out = tmp_path / "out"
    counts = annotate(models[0], folder, out, html=True, n_html=2)
    assert (counts["docs"], counts["entities"]) == (3, 3)
    rows = read_jsonl(out / "entities.jsonl")
    assert [row["id"] for row in rows] == ["a.txt", "b.txt", "c.txt"]
    assert [e["label"] for e in rows[0]["entities"]] == ["PER", "LOC"]
    html = (out / "entities.html").read_text(encoding="utf8")
    assert "<html" in html and "a.txt" in html and "b.txt" in html and "c.txt" not in html
    docs = list(DocBin().from_disk(out / "annotations.spacy").get_docs(spacy.blank("en").vocab))
    assert len(docs) == 3 and "title" not in docs[0].user_data


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"text": "ok"}', '{"text": "broken"'], "line 2: invalid JSON"),
        (['{"text": "ok"}', "", '{"id": 1}'], 'line 3: expected an object with a "text"'),
        (['{"text": 5}'], "line 1: expected"),
        (['["text"]'], "line 1: expected"),
        (["", ""], "no documents"),
    ],
)
def test_jsonl_errors(tmp_path, lines, message):
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ValueError, match=message):
        read_input(path)


def test_bad_input_path(models, tmp_path):
    (tmp_path / "x.csv").write_text("text\n", encoding="utf8")
    with pytest.raises(ValueError, match="folder of .txt files or a .jsonl"):
        annotate(models[0], tmp_path / "x.csv", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no documents"):
        annotate(models[0], tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # fails before writing anything


def test_cli(models, jsonl, tmp_path, capsys):
    out = tmp_path / "cli"
    counts = main([models[1], str(jsonl), str(out), "--html", "--batch-size", "1"])
    assert counts["docs"] == 3
    assert "3 docs, 4 entities" in capsys.readouterr().out
    for name in ("annotations.spacy", "entities.jsonl", "entities.html"):
        assert (out / name).exists()


def test_txt_offsets_match_the_file_with_crlf(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    raw = b"Mary met Peter .\r\nThey went to Paris .\r\n"
    (folder / "crlf.txt").write_bytes(raw)
    n_docs, records = read_input(folder)
    assert n_docs == 1 and list(records) == [("crlf.txt", raw.decode("utf8"))]


def test_txt_that_is_not_utf8_is_named_before_any_work(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("fine", encoding="utf8")
    (folder / "b.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match=r"b\.txt: not UTF-8 .*re-encode"):
        read_input(folder)


def test_html_shows_confidences(models, jsonl, tmp_path):
    out = tmp_path / "html"
    annotate(models[1], jsonl, out, html=True, low_confidence=0.75)
    page = (out / "entities.html").read_text(encoding="utf8")
    # Stand-in scores are 1 / entity length: "John Smith" 0.50, one-token entities 1.00.
    assert "PER 0.50</span>" in page and "LOC 1.00</span>" in page
    assert 'title="PER, confidence 0.50"' in page
    # Below 0.75: "John Smith" and "New York" twice (0.50 each); "Paris" (1.00) is not outlined.
    assert page.count("outline: 2px dashed") == 3 and page.count("LOC 1.00</span>") == 1
    assert "John Smith" in page and "<html" in page and "below 0.75" in page


def test_html_without_confidences_shows_labels_only(models, jsonl, tmp_path):
    out = tmp_path / "html"
    annotate(models[0], jsonl, out, html=True)
    page = (out / "entities.html").read_text(encoding="utf8")
    assert "PER</span>" in page and "LOC</span>" in page
    assert "confidence 0" not in page and "outline: 2px dashed" not in page


def test_cli_low_confidence_option(models, jsonl, tmp_path):
    out = tmp_path / "cli"
    main([models[1], str(jsonl), str(out), "--html", "--low-confidence", "0.4"])
    page = (out / "entities.html").read_text(encoding="utf8")
    assert "PER 0.50</span>" in page and "outline: 2px dashed" not in page


def test_max_length_is_raised_to_the_longest_text(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.max_length = 50
    text = "Filler words here. " * 10 + "John Smith flew to Paris."
    with pytest.raises(ValueError, match="E088"):
        nlp(text)
    path = write_jsonl(tmp_path / "long.jsonl", [json.dumps({"text": text, "id": "long"})])
    counts = annotate(nlp, path, tmp_path / "out")
    assert counts["entities"] == 2 and nlp.max_length == len(text)
    big = spacy.blank("en")
    annotate(big, path, tmp_path / "out")
    assert big.max_length == 1_000_000  # raised only, never lowered


def test_shipped_samples_hold_a_long_document():
    samples = REPO / "samples" / "long_docs.jsonl"
    n_docs, records = read_input(samples)
    words = {doc_id: len(text.split()) for doc_id, text in records}
    assert n_docs == len(words) == 4
    assert words["scandal-in-bohemia"] >= 3000, words  # the whole story, 8,547 words


def test_the_pipeline_runs_as_saved(saved, tmp_path):
    """annotate adds nothing to the pipeline (issue #21): a ctx_ner that windows sentences
    without anything setting them warns, as spacy.load(path)(text) does, and both give the
    same entities; the pipeline to ship is one with its own sentencizer."""
    from spacy_ctxext.planning.sentences import NoSentencesWarning

    config = {"components": {"ctx_ner": {"model": {"encoder": {"isolate_sentences": True}}}}}
    sentences = spacy.load(saved, config=config)
    text = "Mary met Peter in London . They went to Paris ."
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "text": text}) + "\n", encoding="utf8")
    with pytest.warns(NoSentencesWarning):
        annotate(sentences, source, tmp_path / "out")
    assert sentences.pipe_names == ["ctx_ner"]
    written = [json.loads(line) for line in (tmp_path / "out" / "entities.jsonl").open()]
    expected = [(e.start_char, e.end_char, e.label_) for e in sentences(text).ents]
    assert [
        (e["start_char"], e["end_char"], e["label"]) for e in written[0]["entities"]
    ] == expected


def test_jsonl_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"text": "fine"}\n' + '{"text": "café"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{path}: line 2: not UTF-8 .*re-encode"):
        read_input(path)


def test_duplicate_ids_warn_with_their_count_and_lines(models, tmp_path):
    from spacy_ctxext.annotation.inputs import DuplicateIdWarning

    lines = [json.dumps({"id": doc_id, "text": "Paris."}) for doc_id in ("a", "b", "a", "a")]
    path = write_jsonl(tmp_path / "dupes.jsonl", lines)
    with pytest.warns(
        DuplicateIdWarning, match=rf"{path}: 2 docs repeat .*line 3, id 'a' as on line 1"
    ):
        counts = annotate(models[0], path, tmp_path / "out")
    assert counts["docs"] == 4  # every doc kept, once
    assert [row["id"] for row in read_jsonl(tmp_path / "out" / "entities.jsonl")] == list("abaa")
