"""Splits: partition properties, per-user counts, stable ties, seeds, errors, FilmTrust P1."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recseek.data import Interactions
from recseek.data.readers import read_jstarcraft
from recseek.data.split import (
    given_n,
    kfold,
    leave_one_out,
    random_split,
    ratio_split,
    split,
    temporal_split,
)
from recseek.errors import ParameterError
from recseek.testing.fixtures import shared_data_dir, synthetic

SHARED = shared_data_dir()


def records(data: Interactions) -> set[tuple[int, int, float, float]]:
    u, i, v, t = data.to_coo()
    t = np.zeros(len(u)) if t is None else t
    return set(zip(u.tolist(), i.tolist(), v.tolist(), t.tolist(), strict=True))


def check_partition(data: Interactions, train: Interactions, test: Interactions) -> None:
    assert train.users is data.users and test.items is data.items
    assert train.nnz + test.nnz == data.nnz
    a, b = records(train), records(test)
    assert not (a & b)
    assert a | b == records(data)
    for part in (train, test):
        assert part.timestamps is None or part.timestamps.shape == (part.nnz,)
        assert part.order.shape == (part.nnz,)


@st.composite
def interactions(draw, with_time: bool = True) -> Interactions:
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 12))
    cells = draw(st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), min_size=1,
                         max_size=n_users * n_items))
    cells = sorted(cells)
    perm = draw(st.permutations(range(len(cells))))
    cells = [cells[p] for p in perm]  # input order differs from (user, item) order
    u = np.array([c[0] for c in cells])
    i = np.array([c[1] for c in cells])
    v = np.array(draw(st.lists(st.integers(1, 5), min_size=len(cells), max_size=len(cells))), dtype=float)
    t = np.array(draw(st.lists(st.integers(0, 3), min_size=len(cells), max_size=len(cells))), dtype=float) \
        if with_time else None  # few distinct times: many ties
    return Interactions.from_arrays(u, i, v, t)


def per_group_counts(data: Interactions, by: str = "user") -> np.ndarray:
    if by == "user":
        return np.diff(data.matrix.indptr)
    return np.bincount(data.matrix.indices, minlength=data.n_items)


def _reference_ratio_train(data: Interactions, ratio: float) -> set[tuple[int, int]]:
    """Per user: sort by (time, input position) with Python's stable sort, take floor(ratio*n)."""
    u, i, _, t = data.to_coo()
    keep = set()
    for user in np.unique(u):
        rows = [k for k in range(len(u)) if u[k] == user]
        rows.sort(key=lambda k: (t[k], data.order[k]))
        keep |= {(int(u[k]), int(i[k])) for k in rows[: math.floor(ratio * len(rows))]}
    return keep


# ---------------------------------------------------------------------- properties
@settings(max_examples=60, deadline=None)
@given(interactions(), st.floats(0.05, 0.95))
def test_ratio_split_matches_reference(data: Interactions, ratio: float) -> None:
    train, test = ratio_split(data, ratio, order="time")
    check_partition(data, train, test)
    assert np.array_equal(per_group_counts(train), np.floor(ratio * per_group_counts(data)))
    u, i, _, _ = train.to_coo()
    assert set(zip(u.tolist(), i.tolist(), strict=True)) == _reference_ratio_train(data, ratio)


@settings(max_examples=40, deadline=None)
@given(interactions(), st.floats(0.05, 0.95), st.sampled_from(["time", "random"]), st.integers(0, 3))
def test_ratio_split_by_item_counts(data: Interactions, ratio: float, order: str, seed: int) -> None:
    train, test = ratio_split(data, ratio, by="item", order=order, seed=seed)
    check_partition(data, train, test)
    assert np.array_equal(per_group_counts(train, "item"), np.floor(ratio * per_group_counts(data, "item")))


@settings(max_examples=40, deadline=None)
@given(interactions(), st.integers(1, 4), st.sampled_from(["time", "random"]))
def test_leave_one_out_counts(data: Interactions, k: int, order: str) -> None:
    train, test = leave_one_out(data, k=k, order=order)
    check_partition(data, train, test)
    n = per_group_counts(data)
    assert np.array_equal(per_group_counts(test), np.where(n > k, k, 0))
    if order == "time":  # every test record is at least as late as every train record of its user
        for user in range(data.n_users):
            a = train.timestamps[train.matrix.indptr[user]: train.matrix.indptr[user + 1]]
            b = test.timestamps[test.matrix.indptr[user]: test.matrix.indptr[user + 1]]
            if len(a) and len(b):
                assert a.max() <= b.min()


@settings(max_examples=40, deadline=None)
@given(interactions(with_time=False), st.integers(1, 5), st.integers(0, 5))
def test_given_n_counts(data: Interactions, n: int, seed: int) -> None:
    train, test = given_n(data, n=n, seed=seed)
    check_partition(data, train, test)
    assert np.array_equal(per_group_counts(train), np.minimum(per_group_counts(data), n))


@settings(max_examples=40, deadline=None)
@given(interactions(), st.floats(0.05, 0.95), st.integers(0, 5))
def test_random_split_sizes(data: Interactions, ratio: float, seed: int) -> None:
    train, test = random_split(data, ratio, seed=seed)
    check_partition(data, train, test)
    assert train.nnz == math.floor(ratio * data.nnz)


@settings(max_examples=40, deadline=None)
@given(interactions(), st.floats(0.05, 0.95))
def test_temporal_split_never_mixes_times(data: Interactions, ratio: float) -> None:
    train, test = temporal_split(data, ratio=ratio)
    check_partition(data, train, test)
    assert test.nnz >= 1
    if train.nnz:
        assert train.timestamps.max() < test.timestamps.min()
    # the cutoff is the time of record floor(ratio*n) in time order: everything before it trains
    cutoff = np.sort(data.timestamps)[math.floor(ratio * data.nnz)]
    assert train.nnz == int((data.timestamps < cutoff).sum())


@settings(max_examples=30, deadline=None)
@given(interactions(), st.integers(2, 5), st.integers(0, 3))
def test_kfold_partitions_records(data: Interactions, k: int, seed: int) -> None:
    if data.nnz < k:
        with pytest.raises(ParameterError, match="larger than the number of records"):
            kfold(data, k, seed)
        return
    folds = list(kfold(data, k=k, seed=seed))
    assert len(folds) == k
    tests = [records(te) for _, te in folds]
    for train, test in folds:
        check_partition(data, train, test)
    assert set().union(*tests) == records(data)
    assert sum(len(t) for t in tests) == data.nnz
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    chosen = split(data, "kfold", k=k, seed=seed, fold=k - 1)
    assert records(chosen[1]) == tests[-1]


# ---------------------------------------------------------------------- ties and seeds
def test_stable_on_ties_from_file(tmp_path: Path) -> None:
    # user 1: item 40 is earliest; items 30, 10, 20, 50 share t=5 and keep their file order
    f = tmp_path / "score.txt"
    f.write_text("1 30 5 4\n1 10 5 3\n2 10 7 1\n1 20 5 2\n1 40 1 1\n1 50 5 1\n2 30 7 2\n")
    data = read_jstarcraft(f)
    train, test = ratio_split(data, 0.6, order="time")
    user = data.users.index(1)
    assert sorted(data.items.lookup(train.items_of(user)).tolist()) == [10, 30, 40]
    assert sorted(data.items.lookup(test.items_of(user)).tolist()) == [20, 50]
    # user 2: two records at t=7 -> floor(0.6*2) = 1 to train: the first in the file (item 10)
    assert data.items.lookup(train.items_of(data.users.index(2))).tolist() == [10]
    tr1, te1 = leave_one_out(data, k=2)
    assert sorted(data.items.lookup(te1.items_of(user)).tolist()) == [20, 50]
    tr2, _ = given_n(data, n=2, order="time")
    assert sorted(data.items.lookup(tr2.items_of(user)).tolist()) == [30, 40]


def test_reproducible_with_seed() -> None:
    data = synthetic(80, 50, with_time=False)
    for fn, kw in ((random_split, {}), (ratio_split, {"order": "random"}), (given_n, {"n": 3}),
                   (leave_one_out, {"order": "random"})):
        a = fn(data, seed=7, **kw)[1]
        b = fn(data, seed=7, **kw)[1]
        c = fn(data, seed=8, **kw)[1]
        assert records(a) == records(b), fn.__name__
        assert records(a) != records(c), fn.__name__
    assert [records(t) for _, t in kfold(data, 3, seed=1)] == [records(t) for _, t in kfold(data, 3, seed=1)]


def test_meta_per_record_arrays_follow_split(tmp_path: Path) -> None:
    f = tmp_path / "reviews.txt"
    f.write_text("".join(f"{u},{i},w{u}_{i},{(u + i) % 5 + 1}\n" for u in range(6) for i in range(5)))
    data = read_jstarcraft(f)
    train, test = random_split(data, 0.5, seed=3)
    for part in (train, test):
        u, i, _, _ = part.to_coo()
        expected = [f"w{data.users.id(a)}_{data.items.id(b)}" for a, b in zip(u, i, strict=True)]
        assert [str(c) for c in part.meta["comments"]] == expected
    assert data.meta["comments"].shape == (data.nnz,)


def test_split_dispatcher() -> None:
    data = synthetic(30, 20)
    assert records(split(data, "ratio", ratio=0.5)[0]) == records(ratio_split(data, 0.5)[0])
    assert records(split(data, "random")[1]) == records(random_split(data)[1])
    assert records(split(data, "leave_one_out", k=2)[1]) == records(leave_one_out(data, 2)[1])
    assert records(split(data, "temporal", ratio=0.5)[1]) == records(temporal_split(data, ratio=0.5)[1])
    assert records(split(data, "given_n", n=2)[0]) == records(given_n(data, 2)[0])
    assert records(split(data, "kfold")[1]) == records(next(kfold(data))[1])


def test_temporal_split_with_cutoff() -> None:
    data = synthetic(30, 20)
    cutoff = float(np.median(data.timestamps))
    train, test = temporal_split(data, cutoff=cutoff)
    assert (train.timestamps < cutoff).all() and (test.timestamps >= cutoff).all()


# ---------------------------------------------------------------------- errors
def test_bad_parameters() -> None:
    data = synthetic(20, 10)
    untimed = synthetic(20, 10, with_time=False)
    cases = [
        (lambda: ratio_split(data, 0.0), "ratio must be a number strictly between 0 and 1, got 0.0"),
        (lambda: ratio_split(data, 1), "ratio must be a number strictly between 0 and 1, got 1"),
        (lambda: random_split(data, 1.5), "ratio must be"),
        (lambda: ratio_split(data, by="session"), "by must be 'user' or 'item'"),
        (lambda: ratio_split(data, order="newest"), "order must be 'time' or 'random'"),
        (lambda: ratio_split(untimed), "order='time' needs timestamps"),
        (lambda: leave_one_out(untimed), "order='time' needs timestamps"),
        (lambda: temporal_split(untimed), "needs timestamps"),
        (lambda: leave_one_out(data, k=0), "k must be an integer >= 1, got 0"),
        (lambda: given_n(data, n=0), "n must be an integer >= 1"),
        (lambda: kfold(data, k=1), "k must be an integer >= 2"),
        (lambda: random_split(data, seed="x"), "seed must be an integer or None"),
        (lambda: temporal_split(data, cutoff=float("nan")), "cutoff must be a finite timestamp"),
        (lambda: split(data, "bootstrap"), "method must be one of random, ratio"),
        (lambda: split(data, "kfold", k=3, fold=3), r"fold must be an integer in \[0, 2\]"),
        (lambda: split(data, "ratio", rate=0.5), "bad option for method 'ratio'"),
        (lambda: random_split(data.matrix), "data must be Interactions"),
    ]
    for call, message in cases:
        with pytest.raises(ParameterError, match=message):
            call()


# ---------------------------------------------------------------------- FilmTrust (P1)
@pytest.mark.skipif(SHARED is None, reason="shared test data not found")
def test_filmtrust_p1_protocol_split() -> None:
    data = read_jstarcraft(SHARED / "jstarcraft" / "filmtrust" / "score.txt")
    train, test = ratio_split(data, 0.8, order="time")
    check_partition(data, train, test)
    n = per_group_counts(data)
    assert np.array_equal(per_group_counts(train), np.floor(0.8 * n))
    # 35,492 distinct (user, item) records of 1,508 raters; 108 raters have a single record
    assert (train.nnz, test.nnz) == (27_807, 7_685)
    assert int((per_group_counts(test) > 0).sum()) == 1508
    assert int(((n > 0) & (per_group_counts(train) == 0)).sum()) == 108
