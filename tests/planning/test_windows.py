"""Window planning in wordpiece space and packing windows into batches."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_ctxext.planning.windows import Windows, pack_by_budget, plan_joined_windows, plan_windows


def as_array(values) -> np.ndarray:
    return np.asarray(sorted(set(values)), dtype=np.int64)


def check_invariants(plan: Windows, n: int, window: int, context: int) -> None:
    """Everything a plan must satisfy, whatever the cut points were."""
    if n == 0:
        assert len(plan) == 0
        return
    assert len(plan) >= 1
    # Cores partition [0, n): ordered, contiguous, non-empty, no gaps or overlaps.
    assert plan.core_start[0] == 0
    assert plan.core_end[-1] == n
    np.testing.assert_array_equal(plan.core_start[1:], plan.core_end[:-1])
    assert np.all(plan.core_end > plan.core_start)
    assert np.all(plan.core_end - plan.core_start <= window - 2 * context)
    # Every window fits the budget, stays inside the doc and holds its core.
    assert np.all(plan.lengths <= window)
    assert np.all(plan.start >= 0)
    assert np.all(plan.end <= n)
    assert np.all(plan.start <= plan.core_start)
    assert np.all(plan.core_end <= plan.end)
    # Context on both sides wherever the doc has it.
    left = plan.core_start - plan.start
    right = plan.end - plan.core_end
    assert np.all(left >= np.minimum(plan.core_start, context))
    assert np.all(right >= np.minimum(n - plan.core_end, context))
    # A window that does not reach an edge of the doc is full: it takes what fits.
    not_edge = (plan.start > 0) & (plan.end < n)
    assert np.all(plan.lengths[not_edge] == window)
    # Every wordpiece is located in exactly the window whose core holds it.
    pieces = np.arange(n)
    owner = plan.locate(pieces)
    assert np.all(plan.core_start[owner] <= pieces)
    assert np.all(pieces < plan.core_end[owner])


def test_plan_windows_rejects_bad_sizes():
    starts = np.arange(10, dtype=np.int64)
    with pytest.raises(ValueError, match="context"):
        plan_windows(10, starts, starts[:1], window=8, context=4)


def test_no_pieces_no_windows():
    empty = np.zeros(0, dtype=np.int64)
    plan = plan_windows(0, empty, empty, window=16, context=4)
    assert len(plan) == 0
    assert len(plan.lengths) == 0


def test_short_doc_is_one_window():
    starts = np.arange(10, dtype=np.int64)
    plan = plan_windows(10, starts, starts[:1], window=32, context=8)
    assert len(plan) == 1
    assert (plan.start[0], plan.end[0], plan.core_start[0], plan.core_end[0]) == (0, 10, 0, 10)


def test_long_doc_every_token_a_start():
    n, window, context = 1000, 64, 8
    starts = np.arange(n, dtype=np.int64)
    plan = plan_windows(n, starts, starts[:1], window=window, context=context)
    check_invariants(plan, n, window, context)
    # Cores are as large as allowed, except the last.
    np.testing.assert_array_equal(plan.core_end[:-1] - plan.core_start[:-1], window - 2 * context)
    # Only the first window touches the start, only the last the end.
    assert plan.start[0] == 0 and np.all(plan.start[1:] > 0)
    assert plan.end[-1] == n and np.all(plan.end[:-1] < n)
    # Inner windows are balanced: exactly `context` on each side.
    inner = slice(1, -1)
    np.testing.assert_array_equal(plan.core_start[inner] - plan.start[inner], context)
    np.testing.assert_array_equal(plan.end[inner] - plan.core_end[inner], context)
    # Consecutive windows overlap by the context on both sides.
    assert np.all(plan.start[1:] < plan.end[:-1])


def test_cores_cut_at_sentence_starts():
    # 30 sentences of 7 pieces, each piece a token: cores of at most 20 pieces must end
    # at a sentence start, never in the middle of a sentence.
    n, length = 210, 7
    tokens = np.arange(n, dtype=np.int64)
    sentences = np.arange(0, n, length, dtype=np.int64)
    plan = plan_windows(n, tokens, sentences, window=36, context=8)
    check_invariants(plan, n, 36, 8)
    assert len(plan) > 5
    assert set(plan.core_start.tolist()) <= set(sentences.tolist())
    # The cores take as many whole sentences as fit (two of 7 in a budget of 20).
    np.testing.assert_array_equal(plan.core_end[:-1] - plan.core_start[:-1], 14)


def test_sentences_of_uneven_lengths():
    lengths = [3, 9, 2, 11, 5, 5, 1, 8, 12, 4, 6, 7, 3, 10, 2, 9]
    sentences = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    n = int(sum(lengths))
    tokens = np.arange(n, dtype=np.int64)
    plan = plan_windows(n, tokens, sentences, window=40, context=10)
    check_invariants(plan, n, 40, 10)
    # Every sentence fits into half a core budget, so every cut is a sentence start.
    assert set(plan.core_start.tolist()) <= set(sentences.tolist())


def test_cuts_at_token_starts_without_sentences():
    # Tokens of 3 pieces each and no sentence starts beyond the first.
    n = 300
    tokens = np.arange(0, n, 3, dtype=np.int64)
    plan = plan_windows(n, tokens, tokens[:1], window=32, context=6)
    check_invariants(plan, n, 32, 6)
    assert len(plan) > 1
    assert set(plan.core_start.tolist()) <= set(tokens.tolist())
    # A core budget of 20 holds six whole tokens (18 pieces).
    np.testing.assert_array_equal(plan.core_end[:-1] - plan.core_start[:-1], 18)


def test_sentence_start_too_early_falls_back_to_tokens():
    # The only sentence start after 0 lies in the first half of the core budget, so it
    # is not used: the core is filled to its last token start instead.
    n = 100
    tokens = np.arange(0, n, 2, dtype=np.int64)
    sentences = np.asarray([0, 4], dtype=np.int64)
    plan = plan_windows(n, tokens, sentences, window=40, context=10)
    check_invariants(plan, n, 40, 10)
    assert plan.core_end[0] == 20


def test_token_longer_than_core_is_split():
    # Pieces 10..509 are one token: far longer than a core of 16.
    n = 520
    tokens = np.asarray([0, 5, 10, 510, 515], dtype=np.int64)
    plan = plan_windows(n, tokens, tokens[:1], window=32, context=8)
    check_invariants(plan, n, 32, 8)
    # The giant token is cut inside, every piece of it predicted exactly once.
    inside = (plan.core_start > 10) & (plan.core_start < 510)
    assert inside.sum() >= 500 // 16 - 1
    counts = np.bincount(plan.locate(np.arange(n)), minlength=len(plan))
    assert counts.sum() == n
    assert np.all(counts >= 1)


def test_context_zero():
    n = 50
    starts = np.arange(n, dtype=np.int64)
    plan = plan_windows(n, starts, starts[:1], window=10, context=0)
    check_invariants(plan, n, 10, 0)
    np.testing.assert_array_equal(plan.core_end[:-1] - plan.core_start[:-1], 10)


def test_locate():
    n = 100
    starts = np.arange(n, dtype=np.int64)
    plan = plan_windows(n, starts, starts[:1], window=20, context=5)
    owner = plan.locate(np.arange(n))
    assert owner[0] == 0 and owner[-1] == len(plan) - 1
    assert np.all(np.diff(owner) >= 0)
    np.testing.assert_array_equal(np.bincount(owner), plan.core_end - plan.core_start)


@st.composite
def planning_inputs(draw):
    context = draw(st.integers(0, 12))
    window = draw(st.integers(2 * context + 1, 2 * context + 40))
    n = draw(st.integers(0, 400))
    extra_tokens = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=120))
    tokens = as_array([0] + extra_tokens) if n else np.zeros(0, np.int64)
    if n:
        chosen = draw(st.lists(st.sampled_from(tokens.tolist()), max_size=30))
        sentences = as_array([0] + chosen)
    else:
        sentences = np.zeros(0, np.int64)
    return n, tokens, sentences, window, context


@pytest.mark.slow  # hypothesis: 300 examples
@settings(max_examples=300, deadline=None, database=None)
@given(planning_inputs())
def test_plan_invariants_property(args):
    n, tokens, sentences, window, context = args
    plan = plan_windows(n, tokens, sentences, window=window, context=context)
    check_invariants(plan, n, window, context)
    if n == 0:
        return
    budget = window - 2 * context
    cuts = plan.core_start[1:]
    sentence_set, token_set = set(sentences.tolist()), set(tokens.tolist())
    for prev, cut in zip(plan.core_start[:-1].tolist(), cuts.tolist()):
        # Each cut is a sentence start in the second half of the budget if there is
        # one; else the last token start that fits; else the budget's end.
        in_second_half = [s for s in sentence_set if prev + budget // 2 < s <= prev + budget]
        fitting_tokens = [t for t in token_set if prev < t <= prev + budget]
        if in_second_half:
            assert cut == max(in_second_half)
        elif fitting_tokens:
            assert cut == max(fitting_tokens)
        else:
            assert cut == prev + budget


@pytest.mark.slow  # hypothesis
@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(planning_inputs(), min_size=1, max_size=5), st.booleans())
def test_joined_docs_are_planned_as_each_doc_alone(docs, isolate):
    """A batch's docs end to end get each doc's own windows, shifted: none crosses a doc."""
    window = min(w for _, _, _, w, _ in docs)
    context = min(c for _, _, _, _, c in docs if 2 * c < window)
    offsets = np.concatenate([[0], np.cumsum([n for n, *_ in docs])])
    shift = offsets[:-1]
    joined = plan_joined_windows(
        offsets,
        np.concatenate([t + o for (_, t, *_), o in zip(docs, shift)]),
        np.concatenate([s + o for (_, _, s, *_), o in zip(docs, shift)]),
        window=window,
        context=context,
        isolate_sentences=isolate,
    )
    alone = [
        plan_windows(n, t, s, window=window, context=context, isolate_sentences=isolate)
        for n, t, s, *_ in docs
    ]
    for field in ("start", "end", "core_start", "core_end"):
        expected = [getattr(p, field) + o for p, o in zip(alone, shift)]
        np.testing.assert_array_equal(getattr(joined, field), np.concatenate(expected))


def test_pack_by_budget_simple():
    lengths = np.asarray([10, 3, 7, 3, 10, 5], dtype=np.int64)
    batches = pack_by_budget(lengths, 20)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) * lengths[batch].max() <= 20
    # Batches go in ascending length order: no batch holds a length above the next's.
    for a, b in zip(batches[:-1], batches[1:]):
        assert lengths[a].max() <= lengths[b].min()


def test_pack_by_budget_empty():
    assert pack_by_budget(np.zeros(0, dtype=np.int64), 100) == []


def test_pack_by_budget_overlong_window_alone():
    lengths = np.asarray([5, 500, 5, 5], dtype=np.int64)
    batches = pack_by_budget(lengths, 100)
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3]
    overlong = [b for b in batches if 1 in b.tolist()]
    assert len(overlong) == 1 and overlong[0].tolist() == [1]
    # Everything else shares one batch.
    assert sorted(map(len, batches)) == [1, 3]


def test_pack_by_budget_all_overlong():
    lengths = np.asarray([300, 200, 400], dtype=np.int64)
    batches = pack_by_budget(lengths, 100)
    assert [b.tolist() for b in batches] == [[1], [0], [2]]


@pytest.mark.slow  # hypothesis
@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(st.integers(1, 600), max_size=60),
    st.integers(1, 2000),
)
def test_pack_by_budget_property(raw, budget):
    lengths = np.asarray(raw, dtype=np.int64)
    batches = pack_by_budget(lengths, budget)
    flat = np.concatenate(batches + [np.zeros(0, np.int64)])
    # Every index exactly once.
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) >= 1
        padded = len(batch) * int(lengths[batch].max())
        assert padded <= budget or len(batch) == 1
        # Sorted by length inside the batch.
        assert np.all(np.diff(lengths[batch]) >= 0)
    # And across batches.
    assert np.all(np.diff(lengths[flat]) >= 0)
    # Never more padded wordpieces + per-call cost than one greedy fill would give.
    assert _cost(batches, lengths, budget) <= _cost(_greedy(lengths, budget), lengths, budget)


def _cost(batches, lengths, budget):
    return sum(len(b) * int(lengths[b].max()) + budget // 16 for b in batches)


def _greedy(lengths, budget):
    order, batches, current = np.argsort(lengths, kind="stable"), [], []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > budget:
            batches.append(np.asarray(current))
            current = []
        current.append(i)
    return batches + ([np.asarray(current)] if current else [])


def test_pack_by_budget_splits_mixed_lengths():
    lengths = np.asarray([500, 40, 60, 510, 50, 505], dtype=np.int64)
    batches = pack_by_budget(lengths, 4096)
    assert [sorted(b.tolist()) for b in batches] == [[1, 2, 4], [0, 3, 5]]


def test_isolated_sentences_have_no_context_and_never_cross_a_sentence():
    sentence_starts = np.asarray([0, 5, 30, 33], dtype=np.int64)
    token_starts = np.arange(40, dtype=np.int64)
    plan = plan_windows(
        40, token_starts, sentence_starts, window=10, context=2, isolate_sentences=True
    )
    np.testing.assert_array_equal(plan.start, plan.core_start)
    np.testing.assert_array_equal(plan.end, plan.core_end)
    assert plan.core_start.tolist() == [0, 5, 15, 25, 30, 33]
    assert plan.core_end.tolist() == [5, 15, 25, 30, 33, 40]
