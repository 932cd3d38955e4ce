"""Training examples the size of a window's core, with context: FLERT-style document chunks.

Whole documents make few, large, correlated training examples (a CoNLL story is one
topic, its sports tables one long run); single sentences lose the context that windows
read at inference. A chunk is a run of consecutive sentences (up to ``core_tokens``
tokens) with ``context_tokens`` tokens of its document on each side. Its text goes through
``nlp.make_doc``, as a user's text does; its gold entities are the core's, and the context
tokens carry no gold annotation (missing, as spaCy's NER gold allows), so the loss is on
the core only while the encoder reads both. spaCy's training loop shuffles the chunks of
all documents together (Schweter and Akbik 2020, "FLERT").
"""

from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from ..pipeline.gold import CORE_SPAN
from .readers import read_docbin

__all__ = ["core_bounds", "doc_chunks", "create_context_chunk_corpus"]


def core_bounds(doc: Doc, core_tokens: int) -> List[Tuple[int, int]]:
    """The doc's tokens cut into cores: runs of whole sentences of at most ``core_tokens``
    tokens (a longer sentence is a core alone); without sentence starts, every
    ``core_tokens`` tokens. The cores partition the doc, in order."""
    if doc.has_annotation("SENT_START"):
        starts = [sentence.start for sentence in doc.sents]
    else:
        starts = list(range(0, len(doc), core_tokens))
    bounds = []
    begin = 0
    for start, end in zip(starts, starts[1:] + [len(doc)]):
        if end - begin > core_tokens and start > begin:
            bounds.append((begin, start))
            begin = start
    if len(doc) > begin:
        bounds.append((begin, len(doc)))
    return bounds


def doc_chunks(
    nlp: Language, gold: Doc, core_tokens: int, context_tokens: int
) -> Iterator[Example]:
    """One example per core of ``gold``: the core with up to ``context_tokens`` tokens on
    each side, its entities gold, its context (and any part of an entity cut by the
    core's edge) missing."""
    entities = list(gold.ents)  # in order and not overlapping, so their ends are sorted too
    ent_starts, ent_ends = [e.start for e in entities], [e.end for e in entities]
    for start, end in core_bounds(gold, core_tokens):
        left, right = max(0, start - context_tokens), min(len(gold), end + context_tokens)
        reference = gold[left:right].as_doc()
        inside, missing = [], [reference[: start - left], reference[end - left :]]
        # The gold doc's entities, not the slice's: as_doc drops an entity cut by the slice.
        touching = entities[bisect_right(ent_ends, start) : bisect_left(ent_starts, end)]
        for ent in touching:
            if ent.start >= start and ent.end <= end:
                inside.append(Span(reference, ent.start - left, ent.end - left, ent.label_))
            else:  # cut by the core's edge
                missing.append(reference[max(ent.start, start) - left : min(ent.end, end) - left])
        reference.set_ents(inside, missing=[span for span in missing if len(span)])
        reference.user_data[CORE_SPAN] = (start - left, end - left)
        yield Example(nlp.make_doc(reference.text), reference)


@registry.readers("spacy-ctxext.ContextChunkCorpus.v1")
def create_context_chunk_corpus(
    path: Union[str, Path], core_tokens: int = 96, context_tokens: int = 32, limit: int = 0
) -> Callable[[Language], Iterable[Example]]:
    """A training corpus of document chunks (``doc_chunks``) from a ``.spacy`` DocBin of
    whole documents with sentence starts (as ``python -m spacy_ctxext.cli.convert`` writes).

    core_tokens: spaCy tokens of whole sentences per chunk's core (the part with a loss).
    context_tokens: tokens of the document read, without a loss, on each side of it.
    limit: read only the first ``limit`` documents (0: all).
    """
    if core_tokens < 1 or context_tokens < 0 or limit < 0:
        raise ValueError(
            "spacy-ctxext.ContextChunkCorpus.v1 takes core_tokens >= 1, context_tokens >= 0 "
            f"and limit >= 0; got {core_tokens}, {context_tokens} and {limit}."
        )

    def read(nlp: Language) -> Iterator[Example]:
        for i, gold in enumerate(read_docbin(path, nlp.vocab)):
            if limit and i >= limit:
                return
            yield from doc_chunks(nlp, gold, core_tokens, context_tokens)

    return read
