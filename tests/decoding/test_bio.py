"""The BIO scheme: tag names, their grammar, and conversions between tags and spans."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from util import is_valid_bio

from spacy_ctxext.decoding.bio import (
    biluo_to_bio,
    bio_tag_names,
    entity_bounds,
    parse_tag,
    spans_to_tags,
    tag_kinds,
    tags_to_spans,
    transition_rules,
)


def test_tag_names_and_rules():
    names = bio_tag_names(["PER", "LOC"])
    assert names == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed, start_allowed = transition_rules(names)
    assert start_allowed.tolist() == [True, True, False, True, False]
    for prev, next_ in itertools.product(range(5), repeat=2):
        opening = [prev - 1] if names[prev].startswith("I-") else []  # B before a leading I
        assert allowed[prev, next_] == is_valid_bio([*opening, prev, next_], names)


def test_labels_may_hold_hyphens():
    names = bio_tag_names(["WORK-OF-ART", "ORG"])
    assert names == ["O", "B-WORK-OF-ART", "I-WORK-OF-ART", "B-ORG", "I-ORG"]
    is_begin, is_inside, labels = tag_kinds(names)
    assert is_begin.tolist() == [False, True, False, True, False]
    assert is_inside.tolist() == [False, False, True, False, True]
    assert labels.tolist() == ["", "WORK-OF-ART", "WORK-OF-ART", "ORG", "ORG"]
    allowed, _ = transition_rules(names)
    assert allowed[1, 2] and not allowed[3, 2]  # I-WORK-OF-ART continues only its own label
    assert tags_to_spans(np.array([1, 2, 2, 3]), names) == [(0, 3, "WORK-OF-ART"), (3, 4, "ORG")]


@pytest.mark.parametrize(
    "tag, parsed",
    [("O", None), ("B-PER", ("B", "PER")), ("I-PER", ("I", "PER")), ("I-A-B", ("I", "A-B"))],
)
def test_parse_tag(tag, parsed):
    assert parse_tag(tag) == parsed


@pytest.mark.parametrize("tag", ["E-PER", "S-LOC", "L-PER", "B-", "PER", "i-PER", "", "o", "-X"])
def test_parse_tag_rejects_other_schemes_and_typos(tag):
    with pytest.raises(ValueError, match=f"unknown NER tag {tag!r}"):
        parse_tag(tag)


def test_rules_reject_a_name_outside_the_scheme():
    with pytest.raises(ValueError, match="'U-PER'"):
        transition_rules(["O", "B-PER", "U-PER"])


def test_tags_to_spans():
    names = bio_tag_names(["PER", "LOC"])  # O B-PER I-PER B-LOC I-LOC
    tags = np.array([1, 1, 2, 0, 3, 4, 4, 0, 1, 3])
    assert tags_to_spans(tags, names) == [
        (0, 1, "PER"),
        (1, 3, "PER"),
        (4, 7, "LOC"),
        (8, 9, "PER"),
        (9, 10, "LOC"),
    ]
    assert tags_to_spans(np.zeros(4, dtype=np.int64), names) == []
    assert tags_to_spans(np.array([0, 0, 3, 4]), names) == [(2, 4, "LOC")]
    assert tags_to_spans(np.zeros(0, dtype=np.int64), names) == []
    assert tags_to_spans([1, 2], names) == [(0, 2, "PER")]  # a list is fine too


def test_entity_bounds_of_sequences_laid_end_to_end():
    names = bio_tag_names(["PER", "LOC"])  # O B-PER I-PER B-LOC I-LOC
    sequences = [[1, 2], [2, 3, 4], [], [3], [0, 1]]  # the second opens with a stray I
    offsets = np.cumsum([0] + [len(tags) for tags in sequences])
    starts, ends = entity_bounds(np.array(sum(sequences, [])), names, offsets[:-1])
    # Each sequence's spans, as tags_to_spans gives them alone: none runs into the next.
    alone = [
        (offset + start, offset + end)
        for offset, tags in zip(offsets.tolist(), sequences)
        for start, end, _ in tags_to_spans(tags, names)
    ]
    assert list(zip(starts.tolist(), ends.tolist())) == alone == [(0, 2), (3, 5), (5, 6), (7, 8)]
    assert entity_bounds(np.zeros(0, dtype=np.int64), names)[0].shape == (0,)


def test_tag_kinds_are_shared_and_read_only():
    names = bio_tag_names(["PER"])
    assert all(a is b for a, b in zip(tag_kinds(names), tag_kinds(tuple(names))))
    with pytest.raises(ValueError, match="read-only"):
        tag_kinds(names)[0][0] = True


def test_spans_to_tags():
    spans = [(0, 2, "PER"), (2, 3, "PER"), (4, 6, "LOC")]
    assert spans_to_tags(7, spans) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC", "O"]
    assert spans_to_tags(3, []) == ["O", "O", "O"]
    assert spans_to_tags(0, []) == []


@st.composite
def entity_spans(draw):
    """Non-overlapping (start, end, label) spans of up to 3 labels in a short sequence."""
    n = draw(st.integers(0, 30))
    cuts = sorted(draw(st.sets(st.integers(0, n), max_size=12)) | {0, n})
    spans = []
    for start, end in zip(cuts[:-1], cuts[1:]):
        label = draw(st.sampled_from([None, "PER", "LOC", "WORK-OF-ART"]))
        if label is not None:
            spans.append((start, end, label))
    return n, spans


@pytest.mark.slow  # hypothesis
@settings(max_examples=200, deadline=None)
@given(entity_spans())
def test_spans_to_tags_and_back(args):
    n, spans = args
    names = bio_tag_names(["PER", "LOC", "WORK-OF-ART"])
    tags = spans_to_tags(n, spans)
    assert len(tags) == n
    ids = np.array([names.index(tag) for tag in tags], dtype=np.int64)
    assert is_valid_bio(ids, names)
    assert tags_to_spans(ids, names) == spans


@pytest.mark.parametrize(
    "biluo, bio",
    [
        (None, None),
        ("-", None),
        ("O", "O"),
        ("B-PER", "B-PER"),
        ("I-PER", "I-PER"),
        ("L-PER", "I-PER"),
        ("U-LOC", "B-LOC"),
        ("U-WORK-OF-ART", "B-WORK-OF-ART"),
    ],
)
def test_biluo_to_bio(biluo, bio):
    assert biluo_to_bio([biluo]) == [bio]


def test_biluo_entities_become_the_same_bio_spans():
    # spaCy's gold for "Mary Ann Smith in Paris": a three-token PER and a one-token LOC.
    biluo = ["B-PER", "I-PER", "L-PER", "O", "U-LOC", "U-LOC"]
    bio = biluo_to_bio(biluo)
    assert bio == ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "B-LOC"]
    names = bio_tag_names(["PER", "LOC"])
    ids = [names.index(tag) for tag in bio]
    assert tags_to_spans(ids, names) == [(0, 3, "PER"), (4, 5, "LOC"), (5, 6, "LOC")]
