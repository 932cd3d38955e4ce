"""Reading gold docs: a ``.spacy`` DocBin's docs on a vocab, and a training corpus of whole
documents that keeps their gold tokens and sentence starts.

spaCy's ``spacy.Corpus.v1`` either re-tokenizes each document with ``nlp.make_doc``
(no sentence starts, other tokens than the gold ones: CoNLL's "1996-08-22" becomes five)
or, with ``gold_preproc``, splits it into sentences. Document-level NER wants neither:
``spacy-ctxext.GoldDocCorpus.v1`` gives the pipeline each document whole, on its gold
tokens and sentence starts. Evaluation scores raw text first, the pipeline's own tokens
and sentence starts; gold ones are its labelled ``gold_sentences`` protocol (see
``spacy_ctxext.scoring.evaluate``).
"""

from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from spacy.util import registry
from spacy.vocab import Vocab

__all__ = ["GoldDocCorpus", "create_gold_doc_corpus", "read_docbin", "unannotated_copy"]


def read_docbin(path: Union[str, Path], vocab: Optional[Vocab] = None) -> Iterator[Doc]:
    """The docs of a ``.spacy`` DocBin, on ``vocab`` (a blank English one by default)."""
    return DocBin().from_disk(path).get_docs(vocab or spacy.blank("en").vocab)


def unannotated_copy(nlp: Language, gold: Doc, *, sentences: bool = True) -> Doc:
    """The gold doc's tokens (and, with ``sentences``, its sentence starts, if any) with
    no other annotation."""
    sent_starts: Optional[List[Union[bool, int, None]]] = None  # as Doc() takes it
    if sentences and gold.has_annotation("SENT_START"):
        sent_starts = [token.is_sent_start for token in gold]
    return Doc(
        nlp.vocab,
        words=[token.text for token in gold],
        spaces=[bool(token.whitespace_) for token in gold],
        sent_starts=sent_starts,
    )


class GoldDocCorpus(Corpus):
    """``spacy.Corpus`` whose predicted docs are ``unannotated_copy`` of the gold ones."""

    # spaCy's Corpus has no public hook for the predicted doc: _make_example is where it
    # calls nlp.make_doc, and overriding it keeps everything else of Corpus (paths, limit,
    # max_length, augmenters, gold_preproc's sentences) as spaCy does it. Pinned by
    # tests/training/test_readers.py, which would fail if spaCy renamed it.
    def _make_example(self, nlp: Language, reference: Doc, gold_preproc: bool) -> Example:
        return Example(unannotated_copy(nlp, reference), reference)


@registry.readers("spacy-ctxext.GoldDocCorpus.v1")
def create_gold_doc_corpus(
    path: Optional[Union[str, Path]],
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
) -> Callable[[Language], Iterable[Example]]:
    """A drop-in for ``spacy.Corpus.v1`` (same arguments) that keeps the gold tokens.

    gold_preproc: as in spaCy, one example per gold sentence; otherwise whole documents.
    """
    if path is None:
        raise ValueError(
            "spacy-ctxext.GoldDocCorpus.v1 needs a path: set [paths.train] / [paths.dev] "
            "to a .spacy file or a folder of them."
        )
    return GoldDocCorpus(
        path, gold_preproc=gold_preproc, max_length=max_length, limit=limit, augmenter=augmenter
    )
