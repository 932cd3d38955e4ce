"""The built-in channels (see ``channels``), registered in spaCy's ``misc`` registry."""

import threading
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import srsly
from spacy.attrs import IDS, ORTH
from spacy.lexeme import Lexeme
from spacy.tokens import Doc
from spacy.util import filter_spans, registry

from ..arrays import KeyTable, sorted_lookup
from .base import Channel, extension_values

CASING_CLASSES = ("other", "lower", "Title", "UPPER", "mixed", "digits", "punct")


class CasingChannel(Channel):
    """The token's shape class from its text: one of ``CASING_CLASSES``.

    The class depends on the text alone, so each distinct ORTH is classed once, from its
    lexeme's flags, and looked up after that: ``doc.to_array`` of six flags costs about
    five times one ORTH array.
    """

    n_values = len(CASING_CLASSES)
    max_known = 200_000  # distinct words remembered (a 9 MB table at most)

    def __init__(self) -> None:
        self._known = KeyTable()
        self._lock = threading.Lock()  # a pipeline may plan in a worker thread

    def token_ids(self, doc: Doc) -> np.ndarray:
        return self.batch_token_ids([doc])

    def batch_token_ids(self, docs: Sequence[Doc]) -> np.ndarray:
        orths = np.concatenate([doc.to_array(ORTH) for doc in docs] + [np.zeros(0, np.uint64)])
        with self._lock:
            ids = self._known.get(orths)
            if (ids < 0).any():
                if len(self._known) >= self.max_known:  # forget all; this batch's come back
                    self._known, ids = KeyTable(), np.full(len(orths), -1)
                new = np.unique(orths[ids < 0])
                self._known.insert(new, casing_classes([docs[0].vocab[o] for o in new.tolist()]))
                ids = self._known.get(orths)
        return ids


def casing_classes(lexemes: Sequence[Lexeme]) -> np.ndarray:
    """The index in ``CASING_CLASSES`` of each lexeme."""
    names = ("is_digit", "is_punct", "is_title", "is_upper", "is_lower", "is_alpha")
    flags = np.array([[getattr(lex, n) for n in names] for lex in lexemes], dtype=bool)
    digit, punct, title, upper, lower, alpha = flags.reshape(-1, len(names)).T
    # The first class that applies: digits, punct, Title ("A" too), UPPER, lower, mixed.
    conditions = [digit, punct, title, upper, lower, alpha]
    return np.select(conditions, [5, 6, 2, 3, 1, 4], default=0).astype(np.int64)


@registry.misc("spacy-ctxext.casing.v1")
def casing_channel() -> Channel:
    """Shape classes: other, lower, Title, UPPER, mixed (iPhone), digits, punct."""
    return CasingChannel()


# spaCy attributes that exist only where a component (or the corpus) set them.
ANNOTATION_OF = {"ENT_TYPE": "ENT_IOB", "ENT_IOB": "ENT_IOB", "ENT_KB_ID": "ENT_IOB"}
ANNOTATION_OF.update({a: a for a in ("POS", "TAG", "MORPH", "LEMMA", "DEP", "HEAD")})


class AttrChannel(Channel):
    """A categorical token attribute (``"ENT_TYPE"``, ``"IS_STOP"``, ``"_.section"``): its
    ``max_values`` most frequent training values get an id each, all others id 0."""

    def __init__(self, attr: str, max_values: int) -> None:
        self.attr = attr
        self.extension = attr[2:] if attr.startswith("_.") else None
        if self.extension is None and attr.upper() not in IDS:
            raise ValueError(
                f"Unknown token attribute {attr!r} for spacy-ctxext.attr.v1: use a spaCy "
                "attribute name (e.g. 'ENT_TYPE', 'IS_STOP', 'SHAPE') or '_.name' for a "
                "Token extension."
            )
        if max_values < 1:
            raise ValueError(f"max_values must be positive, got {max_values}.")
        self.max_values = max_values
        self.from_state({"values": []})

    def initialize(self, docs: Sequence[Doc]) -> None:
        counts: Counter = Counter()
        for doc_values in self._values(docs, training=True):
            counts.update(doc_values.tolist() if self.extension is None else doc_values)
        kept = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[: self.max_values]
        self.from_state({"values": [value for value, _ in kept]})

    def token_ids(self, doc: Doc) -> np.ndarray:
        (values,) = self._values([doc])
        if self.extension is not None:
            return np.asarray([self._index.get(v, 0) for v in values], dtype=np.int64)
        return sorted_lookup(self._keys, self._key_ids, values, 0)

    def to_state(self) -> Dict[str, Any]:
        return {"values": list(self.values)}

    def from_state(self, state: Dict[str, Any]) -> None:
        self.values: List[Any] = list(state["values"])
        self.n_values = 1 + len(self.values)
        self._index = {value: i + 1 for i, value in enumerate(self.values)}
        keys = np.asarray([v for v in self.values if isinstance(v, int)], dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        self._keys, self._key_ids = keys[order], order.astype(np.int64) + 1

    def _values(self, docs: Sequence[Doc], training: bool = False) -> List[Any]:
        if self.extension is not None:
            values = extension_values(self.name, self.extension, docs)
            values = [[None if v is None else str(v) for v in doc_values] for doc_values in values]
            if training and docs and all(v is None for dv in values for v in dv):
                raise ValueError(self._missing(f"token._.{self.extension} is None on every token"))
            return values
        needs = ANNOTATION_OF.get(self.attr.upper())
        if training and needs and docs and not any(d.has_annotation(needs) for d in docs):
            raise ValueError(self._missing(f"no training doc has {needs} annotation"))
        return [doc.to_array(self.attr.upper()).astype(np.uint64) for doc in docs]

    def _missing(self, what: str) -> str:
        return (
            f"Channel {self.name!r} reads {self.attr}, but {what}: add the component that "
            "sets it before ctx_ner (and list it in [training] annotating_components so the "
            "training docs get it too), or set it on the docs of the corpus."
        )


@registry.misc("spacy-ctxext.attr.v1")
def attr_channel(attr: str, max_values: int = 1000) -> Channel:
    """Any categorical token attribute: a spaCy one (``"ENT_TYPE"``, ``"IS_STOP"``) or an
    extension (``"_.section"``); vocabulary from the training docs, unknown values id 0."""
    return AttrChannel(attr, max_values)


class GazetteerChannel(Channel):
    """BIO tags of phrase matches (``PhraseMatcher``; overlaps: the longest wins). The
    patterns are read at initialize and saved with the pipeline (the file is not needed
    to load it)."""

    def __init__(self, patterns: str, ignore_case: bool) -> None:
        self.path = patterns
        self.ignore_case = ignore_case
        self.from_state({"patterns": []})
        self._matchers: Dict[int, Any] = {}

    def initialize(self, docs: Sequence[Doc]) -> None:
        path = Path(self.path)
        if not path.exists():
            raise ValueError(f"Channel {self.name!r}: patterns file {self.path} not found.")
        rows = list(srsly.read_jsonl(path))
        bad = [r for r in rows if not isinstance(r.get("pattern"), str) or "label" not in r]
        if bad:
            raise ValueError(
                f"Channel {self.name!r}: {len(bad)} line(s) of {self.path} are not "
                f'{{"label": ..., "pattern": "a phrase"}} (first: {bad[0]!r}).'
            )
        self.from_state({"patterns": [[r["label"], r["pattern"]] for r in rows]})

    def token_ids(self, doc: Doc) -> np.ndarray:
        ids = np.zeros(len(doc), dtype=np.int64)
        matches = self._matcher(doc)(doc, as_spans=True)
        for span in filter_spans(matches):
            b_id = 1 + 2 * self._label_index[span.label_]
            ids[span.start] = b_id
            ids[span.start + 1 : span.end] = b_id + 1
        return ids

    def to_state(self) -> Dict[str, Any]:
        return {"patterns": self.patterns}

    def from_state(self, state: Dict[str, Any]) -> None:
        self.patterns: List[List[str]] = [list(p) for p in state["patterns"]]
        self.labels = sorted({label for label, _ in self.patterns})
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        self.n_values = 1 + 2 * len(self.labels)
        self._matchers = {}

    def _matcher(self, doc: Doc):
        key = id(doc.vocab)
        if key not in self._matchers:
            import spacy
            from spacy.matcher import PhraseMatcher

            make_doc = spacy.blank(doc.lang_).make_doc
            matcher = PhraseMatcher(doc.vocab, attr="LOWER" if self.ignore_case else "ORTH")
            for label in self.labels:
                texts = [text for lab, text in self.patterns if lab == label]
                matcher.add(label, [make_doc(text) for text in texts])
            self._matchers[key] = matcher
        return self._matchers[key]

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "_matchers": {}}  # rebuilt per vocab where unpickled


@registry.misc("spacy-ctxext.gazetteer.v1")
def gazetteer_channel(patterns: str, ignore_case: bool = True) -> Channel:
    """BIO tags of matches of a JSONL patterns file like entity_ruler's
    (``{"label": "ORG", "pattern": "Acme Corp"}``, string patterns)."""
    return GazetteerChannel(patterns, ignore_case)


COORDINATES = 1001  # 0..1000, as LayoutLM


class LayoutChannel(Channel):
    """``token._.<attr>`` = (x0, y0, x1, y1) in 0..1000 → x, y (and width, height)
    coordinate ids, summed as LayoutLM: x0 and x1 share the x table, y0 and y1 the y one."""

    def __init__(self, attr: str, width_height: bool) -> None:
        self.attr = attr
        self.width_height = width_height
        self.n_values = COORDINATES * (4 if width_height else 2)

    def initialize(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            self.token_ids(doc)  # every error shows before training

    def token_ids(self, doc: Doc) -> np.ndarray:
        (values,) = extension_values(self.name, self.attr, [doc], allow_none=False)
        boxes = _boxes(self.name, self.attr, values)
        x0, y0, x1, y1 = boxes.T
        columns: Tuple[np.ndarray, ...] = (x0, y0 + COORDINATES, x1, y1 + COORDINATES)
        if self.width_height:
            columns += (x1 - x0 + 2 * COORDINATES, y1 - y0 + 3 * COORDINATES)
        return np.stack(columns, axis=1)


def _boxes(name: str, attr: str, values: List[Any]) -> np.ndarray:
    try:
        boxes = np.asarray(values, dtype=np.float64).reshape(len(values), 4)
    except (TypeError, ValueError):
        raise ValueError(
            f"Channel {name!r}: token._.{attr} must be (x0, y0, x1, y1) numbers on every "
            f"token (first value: {values[0]!r})."
        ) from None
    boxes = np.rint(boxes).astype(np.int64)
    outside = ((boxes < 0) | (boxes >= COORDINATES)).any(axis=1)
    flipped = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if outside.any() or flipped.any():
        raise ValueError(
            f"Channel {name!r}: {int(outside.sum())} token box(es) outside 0..1000 and "
            f"{int(flipped.sum())} with x1 < x0 or y1 < y0 in token._.{attr}: normalise boxes "
            "to the page as LayoutLM does (int(1000 * x / page_width), ...)."
        )
    return boxes


@registry.misc("spacy-ctxext.layout.v1")
def layout_channel(attr: str = "bbox", width_height: bool = True) -> Channel:
    """Layout from ``token._.bbox`` (x0, y0, x1, y1 in 0..1000): summed coordinate
    embeddings as LayoutLM, plus width and height unless ``width_height`` is false."""
    return LayoutChannel(attr, width_height)
