"""Fold-in of new users for AutoRec (the output unit by ridge regression on the item codes)
and SASRec (a history read in the order given), with saved models and without torch, and
the sequential protocol's history options."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")  # the neural extra is installed in CI

from recseek.data import Interactions  # noqa: E402
from recseek.errors import UnsupportedError  # noqa: E402
from recseek.evaluation.sequential import evaluate_sequential, leave_last_out  # noqa: E402
from recseek.models import registry  # noqa: E402
from recseek.models._topk import topk  # noqa: E402
from recseek.models.neural.sasrec import user_sequences  # noqa: E402
from recseek.testing.conformance import single_thread  # noqa: E402
from recseek.testing.fixtures import synthetic  # noqa: E402

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Block())
""")


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def _agreement(scores: np.ndarray, trained: np.ndarray) -> tuple[float, float]:
    """(mean per-user Pearson correlation, RMSE) of score rows against the trained rows."""
    return float(np.mean(_row_corr(scores, trained))), float(np.sqrt(np.mean((scores - trained) ** 2)))


# ---------------------------------------------------------------- AutoRec
@pytest.fixture(scope="module")
def autorec_rows():
    data = synthetic(seed=1)
    with single_thread():
        # reg 0.2: the ridge systems of users with fewer ratings than hidden units stay well
        # conditioned, so the comparison with lstsq below is not one of rounding
        model = registry.create("AutoRec", **{**registry.get("AutoRec").test_params, "epochs": 30,
                                              "reg": 0.2}).fit(data)
    rng = np.random.default_rng(3)
    # new users: random ratings on random items, one with a single rating, one with none
    items = [rng.choice(data.n_items, size=n, replace=False) for n in (5, 12, 1, 0)]
    values = [rng.integers(1, 6, size=len(x)).astype(np.float32) for x in items]
    u = np.repeat(np.arange(len(items)), [len(x) for x in items])
    rows = sp.csr_array((np.concatenate(values), (u, np.concatenate(items))), shape=(len(items), data.n_items))
    return model, data, rows


def test_autorec_fold_in_is_the_ridge_minimiser_of_the_training_objective(autorec_rows):
    model, data, rows = autorec_rows
    rows = sp.vstack([rows, sp.csr_array(data.matrix[:5])]).tocsr()
    w, b = model.fold_in(rows)
    lam = model.reg / 2
    h = model.item_codes_.astype(np.float64)
    d = h.shape[1]
    for r in range(rows.shape[0]):
        lo, hi = rows.indptr[r], rows.indptr[r + 1]
        if hi == lo:
            assert np.all(w[r] == 0) and b[r] == pytest.approx(model.global_mean_)
            continue
        # min |[H 1] [w; b] - r|^2 + lam |w|^2 as one least-squares problem (bias unpenalised)
        x = np.hstack([h[rows.indices[lo:hi]], np.ones((hi - lo, 1))])
        a = np.vstack([x, np.hstack([np.sqrt(lam) * np.eye(d), np.zeros((d, 1))])])
        y = np.concatenate([rows.data[lo:hi], np.zeros(d)])
        sol = np.linalg.lstsq(a, y, rcond=None)[0]
        np.testing.assert_allclose(w[r], sol[:d], rtol=1e-3, atol=1e-3)
        assert b[r] == pytest.approx(sol[d], rel=1e-3, abs=1e-3)
    scores = model._score_new(rows)
    np.testing.assert_allclose(scores, w @ model.item_codes_.T + b[:, None], rtol=1e-5, atol=1e-5)


def test_autorec_fold_in_of_training_users_agrees_with_their_trained_units():
    """Trained to convergence, the fold-in of each training user's own ratings gives the
    trained user's scores; a popularity stand-in (every user scored by item means) fails
    the same floor."""
    data = synthetic(seed=1)
    with single_thread():
        model = registry.create("AutoRec", hidden_units=8, epochs=1500, learning_rate=0.03, reg=1.0, batch_size=64,
                                device="cpu").fit(data)
    users = np.arange(data.n_users)
    trained = model.score(users)
    counts = np.bincount(data.matrix.indices, minlength=data.n_items)
    means = np.bincount(data.matrix.indices, weights=data.matrix.data, minlength=data.n_items) / np.maximum(counts, 1)
    stand_in = np.tile(means.astype(np.float32), (len(users), 1))
    corr_pop, rmse_pop = _agreement(stand_in, trained)
    assert corr_pop < 0.98 and rmse_pop > 0.15, (corr_pop, rmse_pop)  # the floor can fail
    corr, rmse = _agreement(model._score_new(sp.csr_array(data.matrix)), trained)
    assert corr >= 0.98 and rmse <= 0.15, (corr, rmse)


def test_autorec_fold_in_batch_equals_single_and_recommends(autorec_rows):
    model, data, rows = autorec_rows
    batch = model._score_new(rows)
    for r in range(rows.shape[0]):
        np.testing.assert_allclose(model._score_new(rows[[r]]), batch[[r]], rtol=1e-6, atol=1e-6)
    items = [rows.indices[rows.indptr[r]:rows.indptr[r + 1]] for r in range(rows.shape[0])]
    values = [rows.data[rows.indptr[r]:rows.indptr[r + 1]] for r in range(rows.shape[0])]
    rec = model.recommend_new(items, values, k=5)
    assert rec.ids.shape == (rows.shape[0], 5)
    for r in range(rows.shape[0]):
        assert not set(rec.ids[r]) & set(items[r])  # the user's rated items are left out
    np.testing.assert_array_equal(rec.ids, topk(batch, 5, exclude=rows).ids)


# ---------------------------------------------------------------- SASRec
def _cycles(n_users: int = 60, n_items: int = 30, length: int = 12, seed: int = 0) -> Interactions:
    """Each user walks the item cycle 0 -> 1 -> ... from a random start (the next item is
    the last one plus 1, which only the order reveals); the timestamps are shuffled
    against the input order, so the order comes from the time alone."""
    rng = np.random.default_rng(seed)
    u, i, ts = [], [], []
    for user in range(n_users):
        start = rng.integers(n_items)
        for step in rng.permutation(length):
            u.append(user)
            i.append((start + step) % n_items)
            ts.append(float(step))
    return Interactions.from_arrays(np.array(u), np.array(i), None, np.array(ts))


@pytest.fixture(scope="module")
def sasrec_fit():
    data = _cycles()
    train, valid, test = leave_last_out(data, validation=True)
    with single_thread():
        model = registry.create("SASRec", factors=16, blocks=2, heads=2, max_length=8, epochs=40, batch_size=16,
                                learning_rate=0.01, dropout=0.1, device="cpu").fit(train)
    return model, train, valid, test


def test_sasrec_scoring_a_history_equals_scoring_the_trained_sequence(sasrec_fit):
    model, train, _, _ = sasrec_fit
    seqs = user_sequences(train, train.nnz)  # longer than max_length: the latest max_length are read
    np.testing.assert_allclose(model.score_histories(seqs), model.score(np.arange(train.n_users)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(model.recommend_new(seqs, k=5).ids, model.recommend(np.arange(train.n_users), 5).ids)


def test_sasrec_fold_in_reads_the_order_given(sasrec_fit):
    model, train, _, _ = sasrec_fit
    n = train.n_items
    index = train.items.indices  # the cycle runs over raw item ids
    histories = [index(np.array([(s + j) % n for j in range(5)])) for s in range(0, n, 3)]
    nxt = index(np.array([(s + 5) % n for s in range(0, n, 3)]))
    top = model.recommend_new(histories, k=1).ids[:, 0]
    pop = registry.create("MostPopular").fit(train).recommend_new(histories, k=1).ids[:, 0]
    assert np.mean(top == nxt) >= 0.9 and np.mean(pop == nxt) <= 0.3, (top, pop, nxt)
    # the same items in reverse order are a different history (rows would not tell them apart)
    back = model.recommend_new([h[::-1] for h in histories], k=1).ids[:, 0]
    assert np.mean(back == nxt) <= 0.5
    with pytest.raises(UnsupportedError, match="time order"):
        model._score_new(sp.csr_array((np.ones(2), ([0, 0], [1, 2])), shape=(1, n)))


def test_sasrec_history_batch_equals_single(sasrec_fit):
    model, train, _, _ = sasrec_fit
    histories = [np.array([3, 4, 5]), np.array([], dtype=np.int64), np.arange(12) % train.n_items, np.array([7])]
    batch = model.score_histories(histories)
    for r, h in enumerate(histories):
        np.testing.assert_allclose(model.score_histories([h]), batch[[r]], rtol=1e-6, atol=1e-6)
    assert np.all(batch[1] == 0)  # an empty history has no state
    single = model.recommend_new(histories[0], k=4)
    np.testing.assert_array_equal(single.ids, model.recommend_new(histories, k=4).ids[[0]])


def test_evaluate_sequential_reads_train_and_validation_as_the_history(sasrec_fit):
    model, train, valid, test = sasrec_fit
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)
    tr, va = user_sequences(train, train.nnz), user_sequences(valid, valid.nnz)
    scores = model.score_histories([np.concatenate([tr[u], va[u]]) for u in users])
    target = test.matrix.indices[test.matrix.indptr[users]]
    for exclude in (True, False):
        seen = sp.csr_array(train.matrix[users] + valid.matrix[users])
        ids = topk(scores, 3, exclude=seen if exclude else None).ids
        expected = np.mean((ids == target[:, None]).any(axis=1))
        got = evaluate_sequential(model, train, test, k=3, valid=valid, exclude_history=exclude)
        assert got["hitrate@3"] == pytest.approx(expected)
    # the validation item is the step before the test item: reading it matters on cycles
    with_valid = evaluate_sequential(model, train, test, k=1, valid=valid)["hitrate@1"]
    without = evaluate_sequential(model, train, test, k=1)["hitrate@1"]
    assert with_valid >= 0.9 and with_valid - without >= 0.5, (with_valid, without)


def test_evaluate_sequential_can_keep_the_history_in_the_ranking():
    data = _cycles(n_users=20)
    train, test = leave_last_out(data)
    pop = registry.create("MostPopular").fit(train)
    users = np.arange(20)
    target = test.matrix.indices[test.matrix.indptr[users]]
    for exclude in (True, False):
        ids = pop.recommend(users, 5, exclude_seen=exclude).ids
        got = evaluate_sequential(pop, train, test, k=5, exclude_history=exclude)
        assert got["hitrate@5"] == pytest.approx(np.mean((ids == target[:, None]).any(axis=1)))


# ---------------------------------------------------------------- saved models, without torch
def test_saved_models_fold_in_without_torch(autorec_rows, sasrec_fit, tmp_path):
    autorec, _, rows = autorec_rows
    sasrec, train, _, _ = sasrec_fit
    autorec.save(tmp_path / "autorec")
    sasrec.save(tmp_path / "sasrec", include_history=False)
    items = [rows.indices[rows.indptr[r]:rows.indptr[r + 1]].tolist() for r in range(rows.shape[0])]
    values = [rows.data[rows.indptr[r]:rows.indptr[r + 1]].tolist() for r in range(rows.shape[0])]
    histories = [[5, 6, 7], [1], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29]]
    code = BLOCK_TORCH + textwrap.dedent(f"""
        import json, numpy as np
        from recseek.models.base import Recommender
        a = Recommender.load({str(tmp_path / "autorec")!r})
        s = Recommender.load({str(tmp_path / "sasrec")!r})
        items = [np.array(x, dtype=np.int64) for x in {items!r}]
        values = [np.array(x, dtype=np.float32) for x in {values!r}]
        hist = [np.array(x, dtype=np.int64) for x in {histories!r}]
        print(json.dumps({{"autorec": a.recommend_new(items, values, k=5).ids.tolist(),
                          "sasrec": s.recommend_new(hist, k=5).ids.tolist(),
                          "torch": "torch" in sys.modules}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not out["torch"]
    expected_a = autorec.recommend_new([np.array(x, dtype=np.int64) for x in items],
                                       [np.array(v, dtype=np.float32) for v in values], k=5).ids
    expected_s = sasrec.recommend_new([np.array(h) for h in histories], k=5).ids
    np.testing.assert_array_equal(np.array(out["autorec"]), expected_a)
    np.testing.assert_array_equal(np.array(out["sasrec"]), expected_s)
