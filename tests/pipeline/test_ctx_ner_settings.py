"""ctx_ner's own settings at load (issue #26): the config given to spacy.load wins over
the saved cfg, nlp.config and behaviour agree, and the pipe's attributes change them."""

import pytest
import spacy

TEXT = "Mary told Peter about Paris ."


def _with_ruler(nlp):
    """An entity_ruler before ctx_ner that calls Mary an ORG (the trained ctx_ner: PER)."""
    nlp.add_pipe("entity_ruler", before="ctx_ner").add_patterns(
        [{"label": "ORG", "pattern": "Mary"}]
    )
    return nlp


def _mary(doc):
    return next((ent.label_ for ent in doc.ents if ent.text == "Mary"), None)


def test_saved_default_replaces_entities(saved):
    nlp = _with_ruler(spacy.load(saved))
    assert nlp.get_pipe("ctx_ner").overwrite is True
    assert _mary(nlp(TEXT)) == "PER"


def test_overwrite_from_the_load_config_wins(saved, tmp_path):
    config = {"components": {"ctx_ner": {"overwrite": False}}}
    nlp = spacy.load(saved, config=config)
    assert nlp.config["components"]["ctx_ner"]["overwrite"] is False
    assert nlp.get_pipe("ctx_ner").cfg["overwrite"] is False
    assert _mary(_with_ruler(nlp)(TEXT)) == "ORG"  # the ruler's entity is kept
    nlp.to_disk(tmp_path / "kept")
    again = spacy.load(tmp_path / "kept")  # round trip: config and behaviour still agree
    assert again.config["components"]["ctx_ner"]["overwrite"] is False
    assert _mary(again(TEXT)) == "ORG"


def test_spans_key_from_the_load_config_wins(saved):
    nlp = spacy.load(saved, config={"components": {"ctx_ner": {"spans_key": "mine"}}})
    doc = nlp(TEXT)
    assert "ctx_ner" not in doc.spans
    assert [span.text for span in doc.spans["mine"]] == [ent.text for ent in doc.ents]
    assert len(doc.spans["mine"].attrs["scores"]) == len(doc.ents) > 0
    assert nlp.get_pipe("ctx_ner").labels == spacy.load(saved).get_pipe("ctx_ner").labels


def test_attributes_change_a_sourced_pipe(saved):
    trained = spacy.load(saved)
    nlp = spacy.blank("en")
    nlp.add_pipe("ctx_ner", source=trained)
    pipe = nlp.get_pipe("ctx_ner")
    pipe.overwrite, pipe.spans_key = False, "sourced"
    doc = _with_ruler(nlp)(TEXT)
    assert _mary(doc) == "ORG" and "sourced" in doc.spans
    with pytest.raises(ValueError, match="overwrite is True or False"):
        pipe.overwrite = "no"
    with pytest.raises(ValueError, match="spans_key is a non-empty string"):
        pipe.spans_key = ""
