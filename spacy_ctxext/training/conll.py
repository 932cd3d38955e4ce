"""Convert CoNLL-style NER files (CoNLL-2003, LitBank) into spaCy ``DocBin`` files.

One ``Doc`` is made per ``-DOCSTART-`` document rather than per sentence, because
long-document NER needs the whole document as context. Sentence boundaries from the
blank lines are kept as ``sent_starts`` so that sentence-level evaluation stays possible.

Usage: ``python -m spacy_ctxext.cli.convert INPUT.conll|FOLDER OUTPUT.spacy|FOLDER [--lang en]
[--scheme auto]`` (a folder converts each of its ``*.conll`` files).
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from ..decoding.bio import parse_tag
from ..io_atomic import write_bytes
from .readers import read_docbin

__all__ = ["ConllWarning", "read_conll", "convert", "count_docbin"]

DOCSTART = "-DOCSTART-"
SCHEMES = ("auto", "iob1", "iob2")

PathLike = Union[str, Path]
# A parsed NER tag: ("B" | "I", label), or None for "O".
ParsedTag = Optional[Tuple[str, str]]


class ConllWarning(UserWarning):
    """Issued for recoverable problems in a CoNLL file (repaired tags, empty documents)."""


class _DocBuilder:
    """Collects the tokens, sentence starts and entity spans of one document."""

    def __init__(self) -> None:
        self.words: List[str] = []
        # Typed as Doc(sent_starts=...) takes it (a List, which is invariant); bools here.
        self.sent_starts: List[Union[bool, int, None]] = []
        self.spans: List[Tuple[int, int, str]] = []
        # I- tags that open an entity, split by what precedes them; see _count_repairs.
        self.i_after_other_type = 0
        self.i_after_outside = 0
        self._at_sentence_start = True
        self._open_label: Optional[str] = None
        self._open_start = 0

    def add_token(self, word: str, tag: ParsedTag) -> None:
        self.sent_starts.append(self._at_sentence_start)
        self._at_sentence_start = False
        position = len(self.words)
        self.words.append(word)
        if tag is None:
            self._close_entity(position)
            return
        prefix, label = tag
        if prefix == "I" and self._open_label == label:
            return  # continues the open entity
        if prefix == "I" and self._open_label is not None:
            self.i_after_other_type += 1
        elif prefix == "I":
            self.i_after_outside += 1
        # Both IOB1 and IOB2 reduce to: B-X always starts an entity, and an I-X that
        # does not continue an X entity starts one too.
        self._close_entity(position)
        self._open_label = label
        self._open_start = position

    def end_sentence(self) -> None:
        # Entities never cross a blank line, the same rule conlleval applies.
        self._close_entity(len(self.words))
        self._at_sentence_start = True

    def build(self, vocab: Vocab) -> Doc:
        self.end_sentence()
        spaces = [True] * len(self.words)
        spaces[-1] = False
        doc = Doc(vocab, words=self.words, spaces=spaces, sent_starts=self.sent_starts)
        # The ents setter marks every other token as "O", so the doc is fully annotated.
        doc.ents = [Span(doc, start, end, label=label) for start, end, label in self.spans]
        return doc

    def _close_entity(self, end: int) -> None:
        if self._open_label is not None:
            self.spans.append((self._open_start, end, self._open_label))
            self._open_label = None


def _parse_tag(tag: str, path: PathLike, lineno: int) -> ParsedTag:
    try:
        return parse_tag(tag)
    except ValueError as err:
        raise ValueError(f"{path}:{lineno}: {err}") from None


def read_conll(path: PathLike, vocab: Vocab, *, scheme: str = "auto") -> Iterator[Doc]:
    """Yield one ``Doc`` per document of a CoNLL file, reading it line by line.

    Words come from the first column and NER tags from the last one. IOB1, IOB2 and plain
    IO tags all decode to the same spans; ``scheme`` ("auto", "iob1" or "iob2") only
    decides which I- tags count as repairs (see ``_count_repairs``). Repairs and dropped
    empty documents get one ``ConllWarning`` each, after the whole file has been read.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    # Tags repeat constantly, so parse each distinct string once: this keeps big files fast.
    tag_cache: Dict[str, ParsedTag] = {}
    totals: Counter = Counter()
    n_columns = first_line = 0
    builder, started_by_docstart = _DocBuilder(), False
    with open(path, "rb") as lines:
        for lineno, raw in enumerate(lines, start=1):
            line = _decode_line(raw, path, lineno)
            columns = _columns(line)
            if not columns:
                builder.end_sentence()
                continue
            if columns[0] == DOCSTART:
                # The marker's other columns vary between releases, so they are not checked.
                yield from _finish_document(builder, vocab, started_by_docstart, totals)
                builder, started_by_docstart = _DocBuilder(), True
                continue
            if not n_columns:
                n_columns, first_line = _check_first_columns(columns, path, lineno)
            elif len(columns) != n_columns:
                raise ValueError(
                    f"{path}:{lineno}: expected {n_columns} columns (as on line {first_line}), "
                    f"got {len(columns)}: {line.rstrip()!r}"
                )
            tag = columns[-1]
            if tag not in tag_cache:
                tag_cache[tag] = _parse_tag(tag, path, lineno)
            builder.add_token(columns[0], tag_cache[tag])
    yield from _finish_document(builder, vocab, started_by_docstart, totals)
    _warn_after_reading(path, _count_repairs(totals, scheme), totals["empty_docs"], totals["docs"])


def _decode_line(raw: bytes, path: PathLike, lineno: int) -> str:
    """A line as text: UTF-8, a BOM on the first line dropped (CRLF goes in ``_columns``)."""
    try:
        return raw.decode("utf-8-sig" if lineno == 1 else "utf8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}:{lineno}: not UTF-8 ({err.reason} at byte {err.start} of the line); "
            "re-encode the file as UTF-8"
        ) from None


def _columns(line: str) -> List[str]:
    """A line's fields: tab-separated if it has a tab (tokens may then hold spaces), else
    space-separated. Only ASCII spaces and tabs separate: a token may hold U+00A0."""
    stripped = line.strip(" \t\r\n")
    if "\t" in stripped:
        return [field.strip(" ") for field in stripped.split("\t")]
    return [field for field in stripped.split(" ") if field]


def _finish_document(
    builder: _DocBuilder, vocab: Vocab, started_by_docstart: bool, totals: Counter
) -> Iterator[Doc]:
    if builder.words:
        totals["i_after_other_type"] += builder.i_after_other_type
        totals["i_after_outside"] += builder.i_after_outside
        totals["docs"] += 1
        yield builder.build(vocab)
    elif started_by_docstart:
        # Tokenless documents (e.g. a trailing -DOCSTART-) would be empty Docs: drop them.
        totals["empty_docs"] += 1


def _check_first_columns(columns: List[str], path: PathLike, lineno: int) -> Tuple[int, int]:
    # A token line needs at least a word and a tag; the first one fixes the width for the file.
    if len(columns) < 2:
        raise ValueError(
            f"{path}:{lineno}: expected at least 2 columns (token ... NER tag), got {len(columns)}"
        )
    return len(columns), lineno


def _count_repairs(totals: Counter, scheme: str) -> int:
    """How many I- tags broke the file's scheme (they were decoded as entity starts anyway).

    IOB2 never opens an entity with I-. IOB1 opens nearly every entity with I- and uses B-
    only between two same-type neighbours, so I-X right after I-Y is valid there (CoNLL-2003
    train has 173 such cases). "auto" takes a file that ever opens an entity with I- after
    O or a sentence start to be IOB1, and anything else to be IOB2.
    """
    after_other, after_outside = totals["i_after_other_type"], totals["i_after_outside"]
    if scheme == "iob2":
        return after_other + after_outside
    if scheme == "iob1" or after_outside:
        return 0
    return after_other


def _warn_after_reading(path: PathLike, repairs: int, empty_docs: int, docs: int) -> None:
    # One warning per file, not per line, so a sloppy file does not flood the log.
    # stacklevel=3 skips this helper and read_conll, pointing at the loop that reads the docs.
    if repairs:
        warnings.warn(
            f"{path}: repaired {repairs} I- tag(s) that did not continue an entity of the "
            "same type; each starts a new entity",
            ConllWarning,
            stacklevel=3,
        )
    if empty_docs:
        warnings.warn(
            f"{path}: dropped {empty_docs} empty document(s) ({DOCSTART} with no tokens)",
            ConllWarning,
            stacklevel=3,
        )
    if not docs:
        warnings.warn(f"{path}: no token lines: no documents", ConllWarning, stacklevel=3)


class _Counts:
    """Running totals shared by ``convert`` and ``count_docbin``."""

    def __init__(self) -> None:
        self.docs = self.sentences = self.tokens = 0
        self.labels: Counter = Counter()

    def add(self, doc: Doc) -> None:
        self.docs += 1
        self.sentences += sum(1 for _ in doc.sents)
        self.tokens += len(doc)
        self.labels.update(ent.label_ for ent in doc.ents)

    def as_dict(self) -> dict:
        return {
            "docs": self.docs,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "entities": sum(self.labels.values()),
            "entities_by_label": dict(sorted(self.labels.items())),
        }


def count_docs(docs: Iterable[Doc]) -> dict:
    """Count docs, sentences, tokens and entities (total and per label)."""
    counts = _Counts()
    for doc in docs:
        counts.add(doc)
    return counts.as_dict()


def count_docbin(path: PathLike, lang: str = "en") -> dict:
    """The same counts as ``convert`` returns, read back from a saved ``DocBin``."""
    return count_docs(read_docbin(path, spacy.blank(lang).vocab))


def format_counts(counts: dict) -> str:
    labels = " ".join(f"{label}={n}" for label, n in counts["entities_by_label"].items())
    return (
        f"{counts['docs']} docs, {counts['sentences']} sentences, {counts['tokens']} tokens, "
        f"{counts['entities']} entities ({labels})"
    )


def convert(
    input_path: PathLike, output_path: PathLike, *, lang: str = "en", scheme: str = "auto"
) -> dict:
    """Convert a CoNLL file to a ``DocBin`` at ``output_path``; print and return the counts."""
    vocab = spacy.blank(lang).vocab
    doc_bin = DocBin(store_user_data=False)
    counts = _Counts()
    for doc in read_conll(input_path, vocab, scheme=scheme):
        doc_bin.add(doc)
        counts.add(doc)
    output_path = Path(output_path)
    write_bytes(output_path, doc_bin.to_bytes())  # never a partial .spacy under its name
    result = counts.as_dict()
    print(f"{input_path} -> {output_path}: {format_counts(result)}")
    return result
