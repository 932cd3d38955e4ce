"""Constrained Viterbi: exact (against brute force and a plain Viterbi), valid BIO, fast on
long documents, and the same for sequences decoded one by one or laid end to end."""

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from util import is_valid_bio

from spacy_ctxext.decoding import viterbi
from spacy_ctxext.decoding.bio import bio_tag_names, tags_to_spans, transition_rules
from spacy_ctxext.decoding.tags import log_softmax
from spacy_ctxext.decoding.viterbi import constrained_viterbi, decode_joined

LABELS = ["PER", "ORG", "LOC", "MISC"]


def path_score(log_probs, tags):
    return float(log_probs[np.arange(len(tags)), tags].sum())


def reference_viterbi(log_probs, names):
    """Plain Viterbi over the whole sequence, one position at a time."""
    allowed, start_allowed = transition_rules(names)
    penalty = np.where(allowed, 0.0, -np.inf)
    delta = log_probs[0] + np.where(start_allowed, 0.0, -np.inf)
    back = []
    for row in log_probs[1:]:
        candidates = delta[:, None] + penalty
        back.append(candidates.argmax(axis=0))
        delta = candidates.max(axis=0) + row
    tags = [int(delta.argmax())]
    for pointers in reversed(back):
        tags.append(int(pointers[tags[-1]]))
    return np.array(tags[::-1])


def decode(log_probs, names):
    return constrained_viterbi(log_probs, *transition_rules(names))


def peaky_scores(rng, tags, num_tags, confidence=8.0):
    """Log-probs that favour ``tags`` by a random margin: mostly confident, some not."""
    logits = rng.normal(0.0, 1.0, (len(tags), num_tags))
    logits[np.arange(len(tags)), tags] += rng.uniform(0.0, confidence, len(tags))
    return log_softmax(logits)


def random_bio(rng, length, num_labels, entity_rate=0.1):
    """A valid tag sequence, mostly O, with entities of 1-3 tokens."""
    tags = np.zeros(length, dtype=np.int64)
    position = 0
    while position < length:
        if rng.random() < entity_rate:
            begin = 1 + 2 * rng.integers(num_labels)
            size = min(int(rng.integers(1, 4)), length - position)
            tags[position : position + size] = begin + 1
            tags[position] = begin
            position += size
        else:
            position += 1
    return tags


@pytest.mark.slow  # hypothesis
@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 40),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0.5, 3.0, 20.0]),
)
def test_random_scores_decode_to_valid_sequences(length, num_labels, seed, scale):
    names = bio_tag_names(LABELS[:num_labels])
    log_probs = log_softmax(np.random.default_rng(seed).normal(0, scale, (length, len(names))))
    tags = decode(log_probs, names)
    assert tags.dtype == np.int64 and tags.shape == (length,)
    assert is_valid_bio(tags, names)


@pytest.mark.slow  # hypothesis
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(1, 2), st.integers(0, 2**32 - 1))
def test_matches_brute_force(length, num_labels, seed):
    names = bio_tag_names(LABELS[:num_labels])
    log_probs = log_softmax(np.random.default_rng(seed).normal(0, 2.0, (length, len(names))))
    best = max(
        path_score(log_probs, np.array(tags))
        for tags in itertools.product(range(len(names)), repeat=length)
        if is_valid_bio(tags, names)
    )
    assert path_score(log_probs, decode(log_probs, names)) == pytest.approx(best, abs=1e-9)


@pytest.mark.slow  # hypothesis
@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
    st.sampled_from([2.0, 8.0, 15.0]),
)
def test_matches_full_viterbi_on_peaky_scores(length, num_labels, seed, confidence):
    # Mostly confident scores with injected violations: the segment shortcut kicks in.
    rng = np.random.default_rng(seed)
    names = bio_tag_names(LABELS[:num_labels])
    tags = random_bio(rng, length, num_labels, entity_rate=0.2)
    flips = rng.integers(length, size=max(1, length // 20))
    tags[flips] = 2 * rng.integers(1, num_labels + 1, size=len(flips))  # stray I tags
    log_probs = peaky_scores(rng, tags, len(names), confidence)
    decoded = decode(log_probs, names)
    assert is_valid_bio(decoded, names)
    expected = path_score(log_probs, reference_viterbi(log_probs, names))
    assert path_score(log_probs, decoded) == pytest.approx(expected, abs=1e-9)


def test_empty_sequences():
    names = bio_tag_names(["PER"])
    assert decode(np.zeros((0, 3)), names).shape == (0,)
    assert decode_joined(np.zeros((0, 3)), [], names) == []
    assert [t.shape for t in decode_joined(np.zeros((0, 3)), [0, 0], names)] == [(0,), (0,)]


def test_scores_must_have_one_column_per_tag():
    allowed, start_allowed = transition_rules(bio_tag_names(["PER"]))
    with pytest.raises(ValueError, match=r"shape \(N, 3\), got \(4, 5\)"):
        constrained_viterbi(np.zeros((4, 5)), allowed, start_allowed)
    with pytest.raises(ValueError, match="shape"):
        constrained_viterbi(np.zeros(3), allowed, start_allowed)


def test_valid_argmax_is_returned_unchanged():
    rng = np.random.default_rng(0)
    names = bio_tag_names(LABELS)
    tags = random_bio(rng, 5000, len(LABELS))
    log_probs = peaky_scores(rng, tags, len(names), confidence=0.1)
    log_probs[np.arange(len(tags)), tags] += 20.0  # make ``tags`` the argmax
    assert is_valid_bio(tags, names)
    np.testing.assert_array_equal(decode(log_probs, names), tags)


def test_one_violation_in_a_long_sequence_is_fast_and_exact():
    rng = np.random.default_rng(1)
    names = bio_tag_names(LABELS)
    tags = random_bio(rng, 100_000, len(LABELS))
    middle = 50_000
    tags[middle - 3 : middle + 3] = [0, 0, 2, 2, 0, 0]  # I-PER I-PER after O
    log_probs = peaky_scores(rng, tags, len(names))
    # B-PER is a close second to O just before, and hopeless where I-PER starts.
    log_probs[middle - 2, 1] = log_probs[middle - 2, 0] - 0.5
    log_probs[middle - 1, 1] = -30.0
    assert not is_valid_bio(log_probs.argmax(axis=1), names)
    started = time.perf_counter()
    decoded = decode(log_probs, names)
    elapsed = time.perf_counter() - started
    expected = reference_viterbi(log_probs, names)
    np.testing.assert_array_equal(decoded, expected)
    assert decoded[middle - 2 : middle + 1].tolist() == [1, 2, 2]
    assert elapsed < 1.0


def test_invalid_start_is_repaired():
    names = bio_tag_names(["PER"])
    log_probs = np.log(np.array([[0.1, 0.3, 0.6], [0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]))
    np.testing.assert_array_equal(decode(log_probs, names), [1, 2, 0])


def decode_each(batch, names):
    """Decode the sequences of ``batch`` laid end to end, as predict does."""
    joined = np.concatenate(batch) if batch else np.zeros((0, len(names)))
    return decode_joined(joined, [len(scores) for scores in batch], names)


@pytest.mark.slow  # hypothesis
@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=8), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_joined_sequences_decode_as_each_alone(lengths, num_labels, seed):
    rng = np.random.default_rng(seed)
    names = bio_tag_names(LABELS[:num_labels])
    batch = []
    for length in lengths:
        tags = random_bio(rng, length, num_labels, entity_rate=0.3)
        tags[rng.integers(max(length, 1), size=length // 8)] = 2  # some stray I-PER
        batch.append(peaky_scores(rng, tags, len(names), confidence=4.0))
    decoded = decode_each(batch, names)
    assert len(decoded) == len(batch)
    for log_probs, tags in zip(batch, decoded):
        np.testing.assert_array_equal(tags, decode(log_probs, names))
        if len(tags):
            expected = reference_viterbi(log_probs, names)
            assert path_score(log_probs, tags) == pytest.approx(path_score(log_probs, expected))


def test_impossible_scores_still_decode_to_a_valid_sequence():
    names = bio_tag_names(["PER"])
    with np.errstate(divide="ignore"):  # log(0): only I-PER is possible at the start
        log_probs = np.log(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    tags = decode(log_probs, names)
    assert is_valid_bio(tags, names)


def test_joined_decoding_repairs_each_sequence_start():
    # Laid end to end, B-PER | I-PER would look valid: each sequence must start anew.
    names = bio_tag_names(["PER"])
    first = np.log(np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]))
    second = np.log(np.array([[0.1, 0.3, 0.6], [0.1, 0.2, 0.7]]))
    decoded = decode_each([first, second, np.zeros((0, 3)), second], names)
    assert [tags.tolist() for tags in decoded] == [[0, 1], [1, 2], [], [1, 2]]


def test_long_entity_after_a_violation_is_decoded_locally():
    # No cut falls inside an entity, so the segment to repair is longer than the first
    # windows searched for cuts: they must widen, rather than decode everything.
    rng = np.random.default_rng(3)
    names = bio_tag_names(LABELS)
    tags = random_bio(rng, 20_000, len(LABELS))
    tags[9_990:10_200] = 0
    tags[10_000:10_100] = 2  # a 100-token I-PER run opened without B-PER
    log_probs = peaky_scores(rng, tags, len(names), confidence=2.0)
    log_probs[np.arange(len(tags)), tags] += 6.0
    allowed, start_allowed = transition_rules(names)
    best = log_probs.argmax(axis=1)
    violations = np.flatnonzero(~allowed[best[:-1], best[1:]]) + 1
    assert violations.tolist() == [10_000]
    free = allowed.all(axis=0) & start_allowed
    cuts = viterbi._find_cuts(log_probs, best, allowed, free, np.array([0]), violations)
    segment = np.searchsorted(cuts, 10_000, side="right") - 1
    assert 9_900 < cuts[segment] <= 10_000 and 10_100 <= cuts[segment + 1] < 10_200
    decoded = decode(log_probs, names)
    np.testing.assert_array_equal(decoded, reference_viterbi(log_probs, names))
    assert tags_to_spans(decoded[9_990:10_200], names) == [(10, 110, "PER")]
