"""Cold-start protocols (recseek.evaluation.coldstart): popularity-stratified item folds,
leakage-free cold-item splits, metrics against a direct per-user computation, planted
text beating collaborative filtering on cold items, new releases, cold users, TOML."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from recseek.errors import DataError, ParameterError, RecseekError
from recseek.evaluation.coldstart import (
    ColdItemSplit,
    cold_item_folds,
    cold_items_split,
    cold_users_split,
    evaluate_cold_items,
    evaluate_cold_users,
    evaluate_review_releases,
    evaluate_split,
    new_release_split,
    review_release_split,
)
from recseek.evaluation.experiment import run_experiment
from recseek.testing.conformance import single_thread
from recseek.testing.fixtures import planted_blocks, synthetic

SMALL = {"factors": 8, "epochs": 5}


def _data():
    return synthetic(n_users=80, n_items=60, density=0.2, seed=4, side=True).binarize()


def test_item_folds_are_stratified_by_popularity() -> None:
    data = _data()
    folds = cold_item_folds(data, folds=5, seed=1, strata=4)
    sizes = np.bincount(folds, minlength=5)
    assert sizes.max() - sizes.min() <= 4  # one item per stratum at most
    counts = np.bincount(data.matrix.indices, minlength=data.n_items)
    order = np.lexsort((np.arange(data.n_items), counts))
    # every popularity quartile is spread over the folds (no fold misses a quartile)
    for q in np.array_split(order, 4):
        assert set(folds[q]) == set(range(5))
    assert not np.array_equal(folds, cold_item_folds(data, folds=5, seed=2, strata=4))
    np.testing.assert_array_equal(folds, cold_item_folds(data, folds=5, seed=1, strata=4))


def test_cold_split_has_no_leak_and_loses_no_record() -> None:
    data = _data()
    s = cold_items_split(data, ratio=0.2, seed=0, fold=1, warm_test_ratio=0.25)
    assert 0.15 < s.cold.mean() < 0.25
    assert not s.cold[s.train.matrix.indices].any(), "a cold item has a training record"
    assert s.cold[s.cold_test.matrix.indices].all()
    assert not s.cold[s.warm_test.matrix.indices].any()
    total = s.train.matrix + s.cold_test.matrix + s.warm_test.matrix
    assert total.nnz == data.nnz and total.max() == 1
    # per user, floor(25%) of the warm records are held out
    warm_counts = np.diff(data.subset(~s.cold[data.matrix.indices]).matrix.indptr)
    np.testing.assert_array_equal(np.diff(s.warm_test.matrix.indptr), np.floor(0.25 * warm_counts))
    with pytest.raises(ParameterError, match="fold must be below 5"):
        cold_items_split(data, ratio=0.2, fold=5)


class _Fixed:
    """A 'model' returning fixed lists, to check the metrics by hand."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def fit(self, train):
        self.seen = train.matrix
        return self

    def recommend(self, users, k, candidates=None, exclude_seen=True, exclude=None):
        from recseek.models._topk import topk

        scores = np.tile(-np.arange(self.n_items, dtype=np.float32), (len(users), 1))
        allowed = np.zeros_like(scores, dtype=bool)
        allowed[:, np.arange(self.n_items) if candidates is None else candidates] = True
        allowed &= self.seen[users].toarray() == 0
        if exclude is not None:
            allowed &= exclude.toarray() == 0
        return topk(scores, k, allowed=allowed)


def test_metrics_match_a_direct_computation() -> None:
    data = _data()
    s = cold_items_split(data, ratio=0.25, seed=3, fold=0)
    k = 5
    r = evaluate_split({"fixed": lambda: _Fixed(data.n_items)}, s, k=k)
    cold = np.flatnonzero(s.cold)

    def ndcg(ranked, relevant):
        dcg = sum(1 / np.log2(i + 2) for i, j in enumerate(ranked) if j in relevant)
        ideal = sum(1 / np.log2(i + 2) for i in range(min(len(relevant), len(ranked))))
        return dcg / ideal

    cold_vals, exposure, warm_vals = [], [], []
    test = s.test
    for u in range(data.n_users):
        seen = set(s.train.items_of(u))
        rel_cold = set(s.cold_test.items_of(u))
        if rel_cold:
            ranked = [j for j in cold if j not in seen][:k]
            cold_vals.append(ndcg(ranked, rel_cold))
        if len(test.items_of(u)):
            ranked = [j for j in range(data.n_items) if j not in seen][:k]
            exposure.append(np.isin(ranked, cold).sum() / k)
            rel_warm = set(s.warm_test.items_of(u))
            if rel_warm:
                warm_vals.append(ndcg(ranked, rel_warm))
    np.testing.assert_allclose(r.values["fixed"][f"cold_ndcg@{k}"], cold_vals, rtol=1e-9)
    np.testing.assert_allclose(r.values["fixed"][f"cold_exposure@{k}"], exposure, rtol=1e-9)
    np.testing.assert_allclose(r.values["fixed"][f"warm_ndcg@{k}"], warm_vals, rtol=1e-9)


def test_text_beats_cf_on_cold_items_of_planted_blocks() -> None:
    """Planted text: TextToCF and ItemTextKNN find each user's cold items, WRMF (no text)
    cannot; uncalibrated, TextToCF keeps WRMF's warm accuracy; calibration leaves the
    cold-only ranking exactly as it was; paired over folds x seeds."""
    data = planted_blocks(side=True).for_task("ranking")[0]
    models = {
        "WRMF": ("WRMF", SMALL),
        "TextToCF": ("TextToCF", {"encoder": "hashing", "base_params": SMALL}),
        "TextToCF-uncal": ("TextToCF", {"encoder": "hashing", "base_params": SMALL, "calibration": "none"}),
        "ItemTextKNN": ("ItemTextKNN", {"encoder": "hashing"}),
    }
    with single_thread():
        r = evaluate_cold_items(models, data, folds=4, seeds=(0, 1), k=5, strata=1)
    assert r.units == 8
    assert r.mean("TextToCF", "cold_ndcg@5") > 0.8 > 0.5 > r.mean("WRMF", "cold_ndcg@5")
    diff, p = r.compare("TextToCF", "WRMF", "cold_ndcg@5")
    assert diff > 0.3 and p < 0.01
    diff, p = r.compare("ItemTextKNN", "WRMF", "cold_ndcg@5")
    assert diff > 0.3 and p < 0.01
    assert r.mean("TextToCF-uncal", "warm_ndcg@5") > 0.9 * r.mean("WRMF", "warm_ndcg@5")
    np.testing.assert_array_equal(r.values["TextToCF"]["cold_ndcg@5"], r.values["TextToCF-uncal"]["cold_ndcg@5"])
    assert r.mean("WRMF", "cold_exposure@5") < r.mean("ItemTextKNN", "cold_exposure@5")
    rows = {row["model"]: row for row in r.table()}
    assert set(rows) == set(models) and rows["WRMF"]["seconds"] > 0


def test_new_releases_are_the_latest_items() -> None:
    data = _data()
    s = new_release_split(data, ratio=0.1)
    first = np.full(data.n_items, np.inf)
    np.minimum.at(first, data.matrix.indices, data.timestamps)
    assert s.cold.sum() == 6
    assert first[s.cold].min() >= first[~s.cold].max()
    assert not s.cold[s.train.matrix.indices].any()
    by_column = new_release_split(data.__class__(**{**data.__dict__,
                                                    "item_data": data.item_data.assign(year=np.arange(60))}),
                                  ratio=0.1, date_column="year")
    np.testing.assert_array_equal(np.flatnonzero(by_column.cold), np.arange(54, 60))
    with pytest.raises(DataError, match="no column 'released'"):
        new_release_split(data, date_column="released")
    assert isinstance(s, ColdItemSplit)


def test_cold_users_given_n() -> None:
    data = planted_blocks(side=True).for_task("ranking")[0]
    train, users, shown, test = cold_users_split(data, ratio=0.25, given=3, seed=0)
    assert len(users) == 24
    assert not np.diff(train.matrix.indptr)[users].any()
    np.testing.assert_array_equal(np.diff(shown.matrix.indptr)[users], 3)
    assert (shown.matrix.multiply(test.matrix)).nnz == 0
    with single_thread():
        r = evaluate_cold_users({"TextToCF": ("TextToCF", {"encoder": "hashing", "base_params": SMALL}),
                                 "ItemTextKNN": ("ItemTextKNN", {"encoder": "hashing"})},
                                data, ratio=0.25, given=(1, 3), k=5)
    assert r.mean("ItemTextKNN", "given3_recall@5") > 0.8
    assert r.mean("TextToCF", "given3_recall@5") > 0.5
    assert len(r.values["TextToCF"]["given1_ndcg@5"]) == 24


def test_cold_users_reach_the_model_in_time_order() -> None:
    """The given items of a cold user are passed in the order of their timestamps (here the
    reverse of item order), as a sequential model such as SASRec reads them."""
    base = synthetic(n_users=60, n_items=40, density=0.25, seed=2).binarize()
    # timestamps falling with the item index: time order is the reverse of index order
    data = replace(base, timestamps=1000.0 - base.matrix.indices.astype(np.float64) + 0.1 * base.user_index())
    seen: list[np.ndarray] = []

    class Spy:
        def fit(self, train):
            self.n = train.n_items
            return self

        def recommend_new(self, items, k=10):
            seen.extend(np.asarray(i) for i in items)
            return SimpleNamespace(ids=np.tile(np.arange(k), (len(items), 1)))

    evaluate_cold_users({"spy": Spy}, data, ratio=0.3, given=(4,), k=3)
    assert seen and all(len(s) == 4 for s in seen)
    assert all((np.diff(s) < 0).all() for s in seen), "given items not in time order"


def test_toml_cold_items_split(tmp_path) -> None:
    data = planted_blocks(side=True).for_task("ranking")[0]
    config = {
        "data": {"name": "unused"},
        "split": {"method": "cold_items", "ratio": 0.25, "seed": 0, "strata": 1, "fold": 2},
        "evaluation": {"task": "ranking", "k": 5, "metrics": ["ndcg", "recall"]},
        "models": [{"name": "ItemTextKNN", "encoder": "hashing"}, {"name": "WRMF", **SMALL}],
    }
    from unittest import mock

    import recseek.datasets as datasets

    with mock.patch.object(datasets, "load", lambda name, path=None: data), single_thread():
        res = run_experiment(config, progress=False)
        by = {r["model"]: r["metrics"]["ndcg@5"] for r in res}
        assert by["ItemTextKNN"] > 0.5 > by["WRMF"]
        every = run_experiment({**config, "split": {"method": "cold_items", "ratio": 0.25, "strata": 1}},
                               progress=False)
        assert "4-fold average" in every[0]["protocol"]
        with pytest.raises(RecseekError, match=r"unknown key \[split\] k for method 'cold_items'"):
            run_experiment({**config, "split": {"method": "cold_items", "k": 3}}, progress=False)
        with pytest.raises(RecseekError, match=r"\[split\].*strata must be an integer >= 1"):
            run_experiment({**config, "split": {"method": "cold_items", "strata": 0}}, progress=False)


# ---------------------------------------------------------------- review-only text
def _with_reviews(data, words):
    """``data`` with a word-id review per record: ``words(user, item)`` -> list of ints."""
    users, items = data.user_index(), data.matrix.indices
    comments = np.array([":".join(str(w) for w in words(int(u), int(i))) for u, i in zip(users, items, strict=True)],
                        dtype=object)
    return replace(data, meta={**(data.meta or {}), "comments": comments, "review_kind": "words"})


def test_review_release_split_has_no_leak() -> None:
    """Each item's text is one of its reviews (the earliest with timestamps); a cold
    item's introduction record is neither trained on nor a target, only known; its
    author is not among its targets; every record lands in exactly one part."""
    data = _with_reviews(_data(), lambda u, i: [i, 1000 + u])  # the review names its item and author
    s = review_release_split(data, ratio=0.2, seed=1, fold=2, warm_test_ratio=0.25)
    assert 0.15 < s.cold.mean() < 0.25
    total = s.train.matrix + s.cold_test.matrix + s.warm_test.matrix + s.known.matrix
    assert total.nnz == data.nnz and total.max() == 1
    assert not s.cold[s.train.matrix.indices].any()
    np.testing.assert_array_equal(np.sort(s.known.matrix.indices), np.flatnonzero(s.cold))  # one per cold item
    texts = s.train.item_data["text"].to_numpy()
    first = np.full(data.n_items, np.inf)
    np.minimum.at(first, data.matrix.indices, data.timestamps)
    author = np.array([int(t.split()[1][1:]) - 1000 for t in texts])
    assert all(t.split()[0] == f"w{i}" for i, t in enumerate(texts))
    for i in range(data.n_items):
        # the introduction is the item's earliest record, by its author
        users_i = np.flatnonzero(data.matrix[:, [i]].toarray().ravel())
        ts = {int(u): data.timestamps[data.matrix.indptr[u] + np.flatnonzero(
            data.matrix.indices[data.matrix.indptr[u]:data.matrix.indptr[u + 1]] == i)[0]] for u in users_i}
        assert ts[author[i]] == first[i]
        if s.cold[i]:
            assert s.known.matrix[author[i], i] == 1
            assert s.cold_test.matrix[author[i], i] == 0
            assert s.cold_test.matrix[:, [i]].nnz == len(users_i) - 1
        else:  # a warm item's introduction stays in training
            assert s.train.matrix[author[i], i] == 1
    # no timestamps: a seeded random introduction
    plain = replace(data, timestamps=None)
    a = review_release_split(plain, ratio=0.2, seed=1, fold=0)
    b = review_release_split(plain, ratio=0.2, seed=1, fold=0)
    c = review_release_split(plain, ratio=0.2, seed=2, fold=0)
    assert (a.train.item_data["text"] == b.train.item_data["text"]).all()
    assert (a.train.item_data["text"] != c.train.item_data["text"]).any()
    with pytest.raises(DataError, match="no reviews"):
        review_release_split(_data(), ratio=0.2)
    with pytest.raises(ParameterError, match="fold must be below 5"):
        review_release_split(data, ratio=0.2, fold=5)


def test_known_records_are_left_out_of_the_rankings() -> None:
    """The introduction record is known: the fixed-order model must skip that item for
    its author, in the cold and the mixed lists, and metrics follow a direct computation."""
    data = _with_reviews(_data(), lambda u, i: [i, 1000 + u])
    s = review_release_split(data, ratio=0.2, seed=0, fold=1)
    k = 5
    r = evaluate_split({"fixed": lambda: _Fixed(data.n_items)}, s, k=k)
    cold = np.flatnonzero(s.cold)
    exposure = []
    for u in range(data.n_users):
        if len(s.test.items_of(u)):
            hidden = set(s.train.items_of(u)) | set(s.known.items_of(u))
            ranked = [j for j in range(data.n_items) if j not in hidden][:k]
            exposure.append(np.isin(ranked, cold).sum() / k)
    np.testing.assert_allclose(r.values["fixed"][f"cold_exposure@{k}"], exposure, rtol=1e-9)


def test_review_text_beats_cf_on_cold_items() -> None:
    """Planted blocks whose reviews carry the block's word: introduced by one review, the
    cold items are found by TextToCF and TF-IDF KNN and not by WRMF (paired, folds x seeds)."""
    blocks = planted_blocks(side=True)
    data = blocks.for_task("ranking")[0]
    rng = np.random.default_rng(0)
    data = _with_reviews(data, lambda u, i: [100 + int(blocks.item_block[i]), int(rng.integers(0, 50))])
    models = {
        "WRMF": ("WRMF", SMALL),
        "TextToCF": ("TextToCF", {"encoder": "tfidf", "base_params": SMALL}),
        "TF-IDF KNN": ("ItemTextKNN", {"encoder": "tfidf"}),
    }
    with single_thread():
        r = evaluate_review_releases(models, data, folds=4, seeds=(0, 1), k=5, strata=1)
    assert r.units == 8
    for name in ("TextToCF", "TF-IDF KNN"):
        diff, p = r.compare(name, "WRMF", "cold_ndcg@5")
        assert r.mean(name, "cold_ndcg@5") > 0.6 and diff > 0.3 and p < 0.01, (name, r.mean(name, "cold_ndcg@5"))
