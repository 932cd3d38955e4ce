"""Training data problems get clear messages, and an interrupted training leaves
loadable models."""

import warnings

import pytest
import spacy
from spacy.tokens import DocBin, Span
from spacy.training import Example
from util import STORY, assert_valid, make_examples, make_nlp

from spacy_ctxext.pipeline.ctx_ner import CtxNER, UnalignedEntitiesWarning

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def unaligned_examples(nlp):
    """Entity offsets inside words: spaCy warns W030 and marks those tokens missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            Example.from_dict(nlp.make_doc("Mary visited Paris ."), {"entities": [(0, 3, "PER")]}),
            Example.from_dict(
                nlp.make_doc("John Smith visited New York ."),
                {"entities": [(0, 7, "PER"), (19, 27, "LOC")]},
            ),
        ]


def test_unaligned_gold_entities_warn_once_per_update(fresh):
    ner = fresh.get_pipe("ctx_ner")
    bad = unaligned_examples(fresh)
    n_missing = sum(tag is None for eg in bad for tag in ner._bio_targets(eg))
    assert n_missing >= 3
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fresh.update(bad + make_examples(fresh))
        ours = [w for w in caught if issubclass(w.category, UnalignedEntitiesWarning)]
        assert len(ours) == 1
        assert f"{n_missing} token(s) in 2 of 5 training examples" in str(ours[0].message)
        assert "offsets_to_biluo_tags" in str(ours[0].message)


def test_unaligned_gold_tokens_are_left_out_of_the_loss(fresh):
    ner = fresh.get_pipe("ctx_ner")
    bad = unaligned_examples(fresh)[:1]
    assert ner._bio_targets(bad[0]) == [None, "O", "O", "O"]
    scores = ner.model.predict([eg.x for eg in bad])
    with pytest.warns(UnalignedEntitiesWarning, match="1 token"):
        _, d_scores = ner.get_loss(bad, scores)
    assert not d_scores[0][0].any()
    assert d_scores[0][1:].any(axis=1).all()


def test_aligned_examples_do_not_warn(fresh):
    ner = fresh.get_pipe("ctx_ner")
    examples = make_examples(fresh)
    # A doc without any NER annotation is "not annotated", not misaligned: no warning,
    # and none of its tokens is in the loss.
    examples.append(Example.from_dict(fresh.make_doc("no annotation here"), {}))
    scores = ner.model.predict([eg.x for eg in examples])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnalignedEntitiesWarning)
        loss, d_scores = ner.get_loss(examples, scores)
    assert ner._bio_targets(examples[-1]) == [None, None, None]
    assert not d_scores[-1].any()
    assert all(d.any(axis=1).all() for d in d_scores[:-1])  # every annotated token counts
    assert loss > 0


def test_unseen_label_names_it_and_the_fix(fresh):
    odd = Example.from_dict(fresh.make_doc("Mary sang ."), {"entities": [(0, 4, "SINGER")]})
    with pytest.raises(ValueError, match=r"'SINGER'.*initialize\.components\.ctx_ner\.labels"):
        fresh.update([odd])


@pytest.mark.parametrize("corpus", [list, iter], ids=["list", "generator"])
def test_empty_corpus_is_a_clear_error(tiny_bert, corpus):
    nlp = make_nlp(tiny_bert)
    with pytest.raises(ValueError, match=r"training corpus is empty.*paths\.train"):
        nlp.initialize(lambda: corpus([]))


def test_corpus_without_entities_is_a_clear_error(tiny_bert):
    nlp = make_nlp(tiny_bert)
    examples = [Example.from_dict(nlp.make_doc("nothing to see"), {"entities": []})]
    with pytest.raises(ValueError, match="No entity labels found"):
        nlp.initialize(lambda: examples)


def test_overlapping_gold_entities(fresh):
    text = "New York City Bank"
    # doc.ents cannot overlap: spaCy refuses such examples with a clear error ...
    with pytest.raises(ValueError, match=r"E103.*overlap"):
        Example.from_dict(fresh.make_doc(text), {"entities": [(0, 13, "LOC"), (9, 18, "ORG")]})
    # ... and overlapping spans kept in doc.spans are not ctx_ner's targets: doc.ents are.
    reference = fresh.make_doc(text)
    reference.set_ents([Span(reference, 0, 2, label="LOC")], default="outside")
    reference.spans["sc"] = [Span(reference, 0, 3, "LOC"), Span(reference, 2, 4, "ORG")]
    example = Example(fresh.make_doc(text), reference)
    targets = fresh.get_pipe("ctx_ner")._bio_targets(example)
    assert targets == ["B-LOC", "I-LOC", "O", "O"]


@pytest.mark.slow  # spacy train
def test_interrupted_training_leaves_loadable_models(tiny_bert, tmp_path, monkeypatch):
    from spacy.cli.train import train

    nlp = make_nlp(tiny_bert, window=64, context=8, mixed_precision=None)
    nlp.config.to_disk(tmp_path / "config.cfg")
    DocBin(docs=[eg.reference for eg in make_examples(nlp)]).to_disk(tmp_path / "train.spacy")
    update, calls = CtxNER.update, []

    def crash_on_fourth_update(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("simulated crash")
        return update(self, *args, **kwargs)

    monkeypatch.setattr(CtxNER, "update", crash_on_fourth_update)
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
        "training.max_steps": 20,
        "training.eval_frequency": 2,
    }
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path / "config.cfg", tmp_path / "out", overrides=overrides)
    for name in ("model-best", "model-last"):
        loaded = spacy.load(tmp_path / "out" / name)
        assert_valid(loaded(STORY * 3))
