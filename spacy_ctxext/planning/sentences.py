"""Sentences without a sentence component: the end marks that the checks and the
retrieval's passages go by, and the warning for sentence windows without sentences."""

from typing import Sequence

import numpy as np
from spacy.attrs import ORTH
from spacy.tokens import Doc

from ..warn_once import WarnOnce

__all__ = ["NoSentencesWarning", "UNSENTENCED_DOCS", "UnsentencedDocs", "sentence_ends"]

SENTENCE_END_MARKS = (".", "!", "?")


class NoSentencesWarning(UserWarning):
    """isolate_sentences is set but docs arrive without sentence boundaries."""


def sentence_ends(doc: Doc) -> np.ndarray:
    """(tokens,) bool: whether each token is sentence-final punctuation."""
    marks = [doc.vocab.strings[mark] for mark in SENTENCE_END_MARKS]
    return np.isin(doc.to_array(ORTH), marks)


class UnsentencedDocs:
    """Counts docs that seem to hold several sentences but have no sentence starts; the
    first batch that has any warns, once per process (``WarnOnce``)."""

    def __init__(self) -> None:
        self.warning = WarnOnce(NoSentencesWarning)

    def check(self, docs: Sequence[Doc]) -> None:
        if self.warning.shown:
            return
        # One-sentence docs need no sentence starts: gold_preproc makes such docs.
        missing = sum(
            not doc.has_annotation("SENT_START") and _several_sentences(doc) for doc in docs
        )
        if missing:
            self.warning.warn(
                f"isolate_sentences is set but {missing} of {len(docs)} docs hold several "
                "sentences and no sentence boundaries, so each is windowed by the window "
                "budget alone. Add a 'sentencizer' or 'senter' before ctx_ner, or train on "
                "spacy-ctxext.GoldDocCorpus.v1, which keeps the gold sentence starts "
                "(spaCy's make_doc sets none). Shown once per process.",
                stacklevel=4,
            )


UNSENTENCED_DOCS = UnsentencedDocs()


def _several_sentences(doc: Doc) -> bool:
    """Whether a sentence-final punctuation token comes before the doc's last token."""
    return bool(sentence_ends(doc)[:-1].any())
