"""ALS family (WRMF, iALS++, eALS, RankALS): closed forms, fold-in, partial_fit, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.errors import DataError, ParameterError, TrainingError
from recseek.models import registry
from recseek.models.base import Recommender
from recseek.models.factorization import _implicit as _base
from recseek.models.factorization import _implicit_kernels as K
from recseek.models.factorization._implicit import gram
from recseek.models.factorization.eals import EALS
from recseek.models.factorization.ialspp import IALSPlusPlus
from recseek.models.factorization.wrmf import WRMF
from recseek.models.ranking.rankals import RankALS
from recseek.testing.fixtures import holdout_last, ml100k_sample, synthetic


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic(n_users=50, n_items=30, seed=7)


def dense_solution(matrix: np.ndarray, y: np.ndarray, w_gram: np.ndarray, w_rhs: np.ndarray, base: np.ndarray,
                   lam: np.ndarray) -> np.ndarray:
    """Row-by-row numpy solve of (base + lam I + Y^T diag(w_gram_r) Y) x = Y^T w_rhs_r."""
    d = y.shape[1]
    out = np.zeros((matrix.shape[0], d))
    for r in range(matrix.shape[0]):
        a = base + lam[r] * np.eye(d) + (y.T * w_gram[r]) @ y
        out[r] = np.linalg.solve(a, y.T @ w_rhs[r])
    return out


def random_problem(seed: int = 0, n_rows: int = 25, n_cols: int = 18, d: int = 6):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < 0.3
    vals = np.where(mask, rng.integers(1, 5, (n_rows, n_cols)), 0).astype(np.float32)
    m = sp.csr_array(vals)
    y = rng.standard_normal((n_cols, d)).astype(np.float32) * 0.5
    return m, vals, y


# ---------------------------------------------------------------- kernels against numpy


def test_gram_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    y = rng.standard_normal((203, 7)).astype(np.float32)
    w = rng.random(203).astype(np.float32)
    np.testing.assert_allclose(gram(y), y.T.astype(np.float64) @ y, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(gram(y, w), (y.T * w) @ y, rtol=1e-5, atol=1e-4)


def test_solve_rows_is_the_wrmf_closed_form() -> None:
    m, vals, y = random_problem()
    alpha, reg = 2.0, 0.3
    conf = (1 + alpha * m.data).astype(np.float32)
    base = (y.T @ y + reg * np.eye(y.shape[1])).astype(np.float32)
    out = np.empty((m.shape[0], y.shape[1]), dtype=np.float32)
    K.solve_rows(m.indptr.astype(np.int64), m.indices.astype(np.int32), conf - 1, conf, y, base,
                 np.zeros(m.shape[0], np.float32), np.arange(m.shape[0], dtype=np.int64), out)
    c = np.where(vals > 0, 1 + alpha * vals, 1.0)
    p = (vals > 0).astype(float)
    expect = dense_solution(vals, y.astype(float), c, c * p, reg * np.eye(y.shape[1]), np.zeros(len(vals)))
    np.testing.assert_allclose(out, expect, rtol=1e-3, atol=1e-4)


def test_conjugate_gradient_reaches_the_exact_solution() -> None:
    m, vals, y = random_problem(seed=2)
    d = y.shape[1]
    conf = (1 + 1.5 * m.data).astype(np.float32)
    a = (y.T @ y + 0.2 * np.eye(d)).astype(np.float32)
    exact = np.empty((m.shape[0], d), dtype=np.float32)
    K.solve_rows(m.indptr.astype(np.int64), m.indices.astype(np.int32), conf - 1, conf, y, a,
                 np.zeros(m.shape[0], np.float32), np.arange(m.shape[0], dtype=np.int64), exact)
    x = np.zeros_like(exact)
    bounds = _base.balanced_chunks(m.indptr, 3)
    K.wrmf_cg(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), np.float32(1.5),
              x, y, a, 3, bounds)
    K.wrmf_cg(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), np.float32(1.5),
              x, y, a, 2 * d, bounds)
    np.testing.assert_allclose(x, exact, rtol=1e-3, atol=1e-4)


def test_ialspp_blocks_converge_to_the_ials_solution() -> None:
    m, vals, y = random_problem(seed=3)
    d = y.shape[1]
    alpha0 = 0.3
    g = (y.T @ y).astype(np.float32)
    lam = np.full(m.shape[0], 0.5, dtype=np.float32)
    ones = np.ones(m.nnz, dtype=np.float32)
    indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int32)
    exact = np.empty((m.shape[0], d), dtype=np.float32)
    K.solve_rows(indptr, indices, ones, ones, y, alpha0 * g, lam, np.arange(m.shape[0], dtype=np.int64), exact)
    bounds = _base.balanced_chunks(indptr, 2)
    full = np.random.default_rng(0).standard_normal((m.shape[0], d)).astype(np.float32)
    K.ialspp_sweep(indptr, indices, full, y, g, alpha0, lam, d, bounds, 30)  # one block = exact iALS
    np.testing.assert_allclose(full, exact, rtol=1e-3, atol=1e-4)
    blocks = np.zeros((m.shape[0], d), dtype=np.float32)
    for _ in range(60):
        K.ialspp_sweep(indptr, indices, blocks, y, g, alpha0, lam, 2, bounds, 30)
    np.testing.assert_allclose(blocks, exact, rtol=1e-2, atol=1e-3)


def test_eals_sweeps_converge_to_the_weighted_solution() -> None:
    m, vals, y = random_problem(seed=4)
    d = y.shape[1]
    rng = np.random.default_rng(5)
    c = rng.random(y.shape[0]).astype(np.float32)  # missing-data weight per column
    w = (1 + m.data).astype(np.float32)
    reg = 0.4
    s = ((y.T * c) @ y).astype(np.float32)
    indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int32)
    exact = np.empty((m.shape[0], d), dtype=np.float32)
    K.solve_rows(indptr, indices, w - c[indices], w, y, s, np.full(m.shape[0], reg, np.float32),
                 np.arange(m.shape[0], dtype=np.int64), exact)
    x = np.zeros((m.shape[0], d), dtype=np.float32)
    bounds = _base.balanced_chunks(indptr, 2)
    for _ in range(200):
        K.eals_sweep(indptr, indices, w, x, y, s, np.ones(m.shape[0], np.float32), c, reg, bounds, 30)
    np.testing.assert_allclose(x, exact, rtol=1e-2, atol=1e-3)


def rankals_loss(model: RankALS, r: np.ndarray) -> float:
    p, q = model.user_factors_.astype(float), model.item_factors_.astype(float)
    s = model.support_.astype(float)
    x = p @ q.T
    total = 0.0
    for u in range(r.shape[0]):
        for i in np.flatnonzero(r[u] > 0):
            total += np.sum(s * ((x[u, i] - x[u]) - (r[u, i] - r[u])) ** 2)
    return total + model.reg * ((p**2).sum() + (q**2).sum())


def test_rankals_user_step_is_the_exact_minimiser(data: Interactions) -> None:
    model = RankALS(factors=4, epochs=2, reg=0.5).fit(data)
    r = data.matrix.toarray().astype(float)
    q, s = model.item_factors_.astype(float), model.support_.astype(float)
    d = q.shape[1]
    scores = model._score_new(data.matrix)
    for u in (0, 7, 21):
        obs = np.flatnonzero(r[u] > 0)
        a, b = model.reg * np.eye(d), np.zeros(d)
        for i in obs:
            diff = q[i] - q
            a += (diff.T * s) @ diff
            b += diff.T @ (s * (r[u, i] - r[u]))
        np.testing.assert_allclose(scores[u], q @ np.linalg.solve(a, b), rtol=1e-3, atol=1e-3)


def test_rankals_loss_decreases(data: Interactions) -> None:
    r = data.matrix.toarray().astype(float)
    losses = [rankals_loss(RankALS(factors=4, epochs=e, reg=0.1).fit(data), r) for e in (1, 2, 4, 6)]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


# ---------------------------------------------------------------- WRMF model


def test_wrmf_exact_item_step(data: Interactions) -> None:
    model = WRMF(factors=5, epochs=3, cg_steps=0, reg=0.7, alpha=2.0).fit(data)
    u = model.user_factors_.astype(float)
    r = data.matrix.toarray()
    c = np.where(r > 0, 1 + 2.0 * r, 1.0).T
    expect = dense_solution(r.T, u, c, c * (r.T > 0), 0.7 * np.eye(5), np.zeros(r.shape[1]))
    np.testing.assert_allclose(model.item_factors_, expect, rtol=1e-3, atol=1e-4)


def test_wrmf_cg_close_to_exact_training(data: Interactions) -> None:
    exact = WRMF(factors=6, epochs=10, cg_steps=0).fit(data)
    cg = WRMF(factors=6, epochs=10, cg_steps=3).fit(data)
    users = np.arange(data.n_users)
    a, b = exact.recommend(users, 5).ids, cg.recommend(users, 5).ids
    overlap = np.mean([len(np.intersect1d(x, y)) / 5 for x, y in zip(a, b, strict=True)])
    assert overlap > 0.8


@pytest.mark.parametrize("name", ["WRMF", "IALSPlusPlus", "EALS", "RankALS"])
def test_fold_in_reproduces_training_users(name: str, data: Interactions) -> None:
    cls = registry.get(name)
    params = {**cls.test_params, "epochs": 15}
    if name == "WRMF":
        params["cg_steps"] = 0
    model = registry.create(name, **params).fit(data)
    users = np.arange(data.n_users)
    items = [data.items_of(u) for u in users]
    values = [data.matrix.data[data.matrix.indptr[u]:data.matrix.indptr[u + 1]] for u in users]
    folded = model.recommend_new(items, values, k=5).ids
    trained = model.recommend(users, k=5).ids
    overlap = np.mean([len(np.intersect1d(x, y)) / 5 for x, y in zip(folded, trained, strict=True)])
    assert overlap > 0.7, overlap


def test_wrmf_partial_fit_grows_and_solves(data: Interactions) -> None:
    model = WRMF(factors=6, epochs=8, cg_steps=0).fit(data)
    before_u, before_i = model.user_factors_.copy(), model.item_factors_.copy()
    n_users, n_items = data.n_users, data.n_items
    old_item_ids = data.items.ids[[0, 3, 5]]
    new = Interactions.from_arrays(
        np.array([10_001, 10_001, 10_001, data.users.ids[2]]),
        np.array([old_item_ids[0], old_item_ids[1], 99_999, old_item_ids[2]]),
    )
    model.partial_fit(new)
    assert model.n_users_ == n_users + 1 and model.n_items_ == n_items + 1
    assert model.user_factors_.shape == (n_users + 1, 6) and model.item_factors_.shape == (n_items + 1, 6)
    newbie = model.users_.index(10_001)
    new_item = model.items_.index(99_999)
    assert np.abs(model.item_factors_[new_item]).sum() > 0
    # the new user's factors are its exact least-squares solution given the item factors
    items = model.seen_.indices[model.seen_.indptr[newbie]:model.seen_.indptr[newbie + 1]]
    np.testing.assert_allclose(model.score([newbie])[0], model._score_new(
        sp.csr_array((np.ones(len(items), np.float32), items, [0, len(items)]), shape=(1, model.n_items_)))[0],
        rtol=1e-3, atol=1e-4)
    rec = model.recommend([newbie], k=5).ids[0]
    assert not np.isin(rec, items).any()
    # untouched users keep their factors; touched user 2 changed
    untouched = np.setdiff1d(np.arange(n_users), [2])
    np.testing.assert_array_equal(model.user_factors_[untouched], before_u[untouched])
    assert not np.allclose(model.user_factors_[2], before_u[2])
    untouched_items = np.setdiff1d(np.arange(n_items), [0, 3, 5])
    np.testing.assert_array_equal(model.item_factors_[untouched_items], before_i[untouched_items])


def test_wrmf_partial_fit_roundtrip(data: Interactions, tmp_path) -> None:
    model = WRMF(factors=4, epochs=3).fit(data)
    model.partial_fit(Interactions.from_arrays(np.array([777, 777]), data.items.ids[:2]))
    loaded = Recommender.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.score([data.n_users]), model.score([data.n_users]), rtol=1e-6)
    assert loaded.users_.index(777) == data.n_users


def test_partial_fit_needs_fit(data: Interactions) -> None:
    with pytest.raises(Exception, match="not fitted"):
        WRMF().partial_fit(data)


def test_deterministic_for_a_seed_and_any_thread_count(data: Interactions, monkeypatch) -> None:
    from recseek._numba import get_num_threads, set_num_threads

    for name in ("WRMF", "IALSPlusPlus", "EALS", "RankALS"):
        cls = registry.get(name)
        a = registry.create(name, **cls.test_params).fit(data)
        monkeypatch.setattr(_base, "SERIAL_WORK", 0)  # force the multi-threaded path
        threads = get_num_threads()
        set_num_threads(max(2, threads) if threads > 1 else 1)
        try:
            b = registry.create(name, **cls.test_params).fit(data)
        finally:
            set_num_threads(threads)
            monkeypatch.setattr(_base, "SERIAL_WORK", 4_000_000)
        np.testing.assert_allclose(a.user_factors_, b.user_factors_, rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(a.item_factors_, b.item_factors_, rtol=1e-4, atol=1e-5, err_msg=name)


# ---------------------------------------------------------------- errors and metadata


@pytest.mark.parametrize(
    ("name", "params", "word"),
    [
        ("WRMF", {"factors": 0}, "factors"),
        ("WRMF", {"reg": -1.0}, "reg"),
        ("WRMF", {"cg_steps": -1}, "cg_steps"),
        ("WRMF", {"alpha": -0.5}, "alpha"),
        ("IALSPlusPlus", {"block_size": 0}, "block_size"),
        ("IALSPlusPlus", {"reg_exponent": 2.0}, "reg_exponent"),
        ("IALSPlusPlus", {"unobserved_weight": -1.0}, "unobserved_weight"),
        ("EALS", {"missing_weighting": "random"}, "missing_weighting"),
        ("EALS", {"missing_weight": -3.0}, "missing_weight"),
        ("RankALS", {"reg": 0.0}, "reg"),
        ("RankALS", {"support_weight": "yes"}, "support_weight"),
    ],
)
def test_bad_hyperparameters(name: str, params: dict, word: str) -> None:
    with pytest.raises(ParameterError, match=word):
        registry.create(name, **params)


@pytest.mark.parametrize("name", ["WRMF", "EALS", "RankALS"])
def test_negative_values_rejected(name: str) -> None:
    bad = Interactions.from_arrays(np.array([1, 2, 2]), np.array([1, 1, 2]), np.array([1.0, -2.0, 1.0]))
    with pytest.raises(DataError, match="non-negative"):
        registry.create(name, epochs=1).fit(bad)


def test_divergence_detected(data: Interactions) -> None:
    # initial factors near the float32 limit overflow the Gram matrices: caught, naming the epoch
    # (eALS divides by the infinite cache and resets such coordinates to 0 instead)
    for name, init in (("WRMF", "init_std"), ("IALSPlusPlus", "init_scale"), ("RankALS", "init_std")):
        with pytest.raises(TrainingError, match="epoch 0"):
            registry.create(name, factors=4, epochs=2, **{init: 1e25}).fit(data)


def test_confidence_overflow_names_alpha(data: Interactions) -> None:
    for model in (WRMF(factors=4, epochs=1, alpha=1e38), EALS(factors=4, epochs=1, alpha=1e38)):
        with pytest.raises(ParameterError, match="alpha"):
            model.fit(data)


def test_alias_and_metadata() -> None:
    assert registry.get("ials++") is IALSPlusPlus
    assert registry.get("iALSpp") is IALSPlusPlus
    for cls in (WRMF, IALSPlusPlus, EALS, RankALS):
        assert cls.paper and cls.task == "ranking"


def test_similar_items_from_factors(data: Interactions) -> None:
    model = WRMF(factors=6, epochs=5).fit(data)
    r = model.similar_items([0, 1], k=3)
    assert r.ids.shape == (2, 3) and (r.ids[0] != 0).all()


@pytest.mark.parametrize("name", ["WRMF", "IALSPlusPlus", "EALS", "RankALS"])
def test_defaults_beat_popularity_on_movielens(name: str) -> None:
    try:
        data = ml100k_sample(300).binarize(4)
    except FileNotFoundError:
        pytest.skip("MovieLens sample not available")
    train, test = holdout_last(data)
    users = np.flatnonzero(np.diff(test.matrix.indptr) > 0)

    def recall(model: Recommender) -> float:
        ids = model.recommend(users, 10).ids
        return float(np.mean([np.isin(ids[r], test.items_of(u)).sum() / min(10, len(test.items_of(u)))
                              for r, u in enumerate(users)]))

    ours = recall(registry.create(name).fit(train))
    pop = recall(registry.create("MostPopular").fit(train))
    assert ours > pop, f"{name} recall@10 {ours:.4f} vs MostPopular {pop:.4f}"
