"""Writing decoded entities to docs: doc.ents, the span group and its scores, overwrite."""

import numpy as np
import pytest
import spacy
from spacy.tokens import Span
from util import DECODE_NAMES as NAMES
from util import tag_docs

from spacy_ctxext.decoding.tags import DocTags, decode_docs
from spacy_ctxext.pipeline.entities import set_batch_entities, set_doc_entities


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def test_entities_and_their_confidences_in_a_span_group(nlp):
    (doc,) = tag_docs([nlp("John Smith visited New York")], {"John": "B-PER", "Smith": "I-PER"})
    group = doc.spans["ctx_ner"]
    assert [(s.text, s.label_) for s in group] == [("John Smith", "PER")]
    assert [(e.text, e.label_) for e in doc.ents] == [("John Smith", "PER")]
    # Each token's tag has logit 10 against six zeros: p = e^10 / (e^10 + 6).
    assert group.attrs["scores"] == pytest.approx([np.exp(10) / (np.exp(10) + 6)], rel=1e-5)


@pytest.mark.parametrize("overwrite", [True, False])
def test_existing_entities_are_replaced_or_kept(nlp, overwrite):
    doc = nlp("John Smith visited New York on Monday .")
    doc.set_ents([Span(doc, 0, 2, label="ORG")], default="missing")
    tags = {"Smith": "B-PER", "York": "B-LOC", "Monday": "B-ORG"}
    tag_docs([doc], tags, overwrite=overwrite)
    found = [(e.text, e.label_) for e in doc.ents]
    if overwrite:
        assert found == [("Smith", "PER"), ("York", "LOC"), ("Monday", "ORG")]
    else:  # "Smith" touches the kept entity: dropped, with its confidence
        assert found == [("John Smith", "ORG"), ("York", "LOC"), ("Monday", "ORG")]
        assert [s.text for s in doc.spans["ctx_ner"]] == ["York", "Monday"]
    assert len(doc.spans["ctx_ner"].attrs["scores"]) == len(doc.spans["ctx_ner"])
    # Every token was predicted: none is left without an IOB value ("missing").
    assert all(t.ent_iob_ in ("B", "I", "O") for t in doc)


def test_overwriting_writes_what_set_ents_writes(nlp):
    def linked_doc():
        doc = nlp("John Smith visited New York on Monday .")
        john = Span(doc, 0, 2, label="PER", kb_id="Q1", span_id="john")
        doc.set_ents([john, Span(doc, 3, 5, label="LOC", kb_id="Q60")], default="missing")
        return doc

    (written,) = tag_docs([linked_doc()], {"Smith": "B-PER", "York": "B-LOC", "Monday": "B-ORG"})
    expected = linked_doc()
    expected.set_ents([Span(expected, e.start, e.end, e.label) for e in written.ents])
    attrs = ["ENT_IOB", "ENT_TYPE", "ENT_KB_ID", "ENT_ID"]
    assert written.to_array(attrs).tolist() == expected.to_array(attrs).tolist()
    # set_ents clears the KB ids of the new entities' tokens only.
    assert [t.ent_kb_id_ for t in written][:5] == ["Q1", "", "", "Q60", ""]


def entities_and_group(doc):
    group = doc.spans["ctx_ner"]
    return (
        [(e.start, e.end, e.label_) for e in doc.ents],
        [(s.start, s.end, s.label_) for s in group],
        group.attrs["scores"],
        [t.ent_iob_ for t in doc],
    )


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_batch_is_written_as_each_doc_alone(nlp, overwrite):
    def docs_with_an_entity():
        docs = [nlp(text) for text in ["John Smith visited New York", "", "York Mary", "Ann"]]
        docs[0].set_ents([Span(docs[0], 1, 2, label="ORG")], default="missing")
        return docs

    batch, alone = docs_with_an_entity(), docs_with_an_entity()
    logits = np.random.default_rng(0).normal(0, 3, (8, len(NAMES))).astype("f")
    decoded = decode_docs(batch, logits, NAMES)
    # Not from the decoder: "York" opens with I-PER after a doc ending in an entity.
    decoded[2] = DocTags(np.array([NAMES.index("I-PER"), 0]), decoded[2].log_probs)
    set_batch_entities(batch, decoded, NAMES, spans_key="ctx_ner", overwrite=overwrite)
    for doc, tags in zip(alone, decoded):
        set_doc_entities(doc, tags, NAMES, spans_key="ctx_ner", overwrite=overwrite)
    assert [entities_and_group(doc) for doc in batch] == [entities_and_group(d) for d in alone]
    assert not batch[2].ents and batch[0].ents[-1].end == len(batch[0])
