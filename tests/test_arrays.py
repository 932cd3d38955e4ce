"""numpy building blocks: ragged runs, key tables, reductions over a short axis."""

import numpy as np
import pytest

from spacy_ctxext.arrays import KeyTable, ragged_arange, row_max, row_sum, run_starts


def test_ragged_runs():
    lengths = np.array([2, 0, 3])
    assert run_starts(lengths).tolist() == [0, 2, 2]
    assert ragged_arange(np.array([10, 5, 20]), lengths).tolist() == [10, 11, 20, 21, 22]
    assert ragged_arange(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


@pytest.mark.parametrize("kind", ["hashes", "small integers"])
def test_key_table_answers_as_a_dict_through_inserts_and_growth(kind):
    rng = np.random.default_rng(0)
    if kind == "hashes":
        keys = np.unique(rng.integers(0, 2**64 - 1, 5000, dtype=np.uint64))
    else:  # clustered keys: the Fibonacci mix must still spread them
        keys = np.arange(5000, dtype=np.uint64)
    keys = rng.permutation(keys)
    values = rng.integers(0, 1000, len(keys))
    table, expected = KeyTable(capacity=4), {}
    for part in np.array_split(np.arange(len(keys)), 9):  # grows several times
        table.insert(keys[part], values[part])
        expected.update(zip(keys[part].tolist(), values[part].tolist()))
        queries = np.concatenate([keys[: part[-1] + 200], [np.uint64(2**64 - 1)]])
        answers = [expected.get(q, -7) for q in queries.tolist()]
        assert table.get(queries, missing=-7).tolist() == answers
        assert len(table) == len(expected) and 2 * len(table) <= len(table.keys)


def test_key_table_empty():
    assert KeyTable().get(np.array([0, 1], np.uint64)).tolist() == [-1, -1]
    assert KeyTable().get(np.zeros(0, np.uint64)).shape == (0,)


def test_short_axis_reductions_equal_numpys():
    rows = np.random.default_rng(1).standard_normal((50, 13)).astype(np.float32)
    rows[3] = -np.inf
    rows[4, 5] = np.nan
    np.testing.assert_array_equal(row_max(rows), rows.max(axis=-1))  # nan propagates
    np.testing.assert_array_equal(row_max(rows, [2, 7]), rows[:, [2, 7]].max(axis=-1))
    finite = rows[5:]
    np.testing.assert_allclose(row_sum(finite), finite.sum(axis=-1, dtype=np.float64), rtol=1e-12)
    assert row_sum(finite).dtype == np.float64
