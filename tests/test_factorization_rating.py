"""Rating factorisation models: closed-form checks, fold-in, validation and divergence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.errors import DataError, ParameterError, TrainingError
from recseek.models import create
from recseek.testing.fixtures import holdout_last, ml100k_sample, synthetic

SGD_MODELS = ["BiasedMF", "PMF", "SVDPlusPlus", "ASVDPlusPlus"]
ALL_MODELS = [*SGD_MODELS, "NMF", "MFALS", "CCD", "BPMF", "FMSGD", "FFM", "FMALS"]
SMALL = {
    "BiasedMF": {"factors": 8, "epochs": 30},
    "PMF": {"factors": 8, "epochs": 30, "learning_rate": 0.02},
    "SVDPlusPlus": {"factors": 8, "epochs": 20},
    "ASVDPlusPlus": {"factors": 8, "epochs": 20},
    "NMF": {"factors": 8, "epochs": 30},
    "MFALS": {"factors": 8, "epochs": 10},
    "CCD": {"factors": 8, "epochs": 10},
    "BPMF": {"factors": 5, "epochs": 30, "burn_in": 10, "samples": 5},
    "FMSGD": {"factors": 8, "epochs": 30},
    "FFM": {"factors": 8, "epochs": 30},
    "FMALS": {"factors": 8, "epochs": 10, "reg": 1.0, "reg_bias": 1.0},
}


@pytest.fixture(scope="module")
def ml_split() -> tuple[Interactions, Interactions]:
    return holdout_last(ml100k_sample(300))


def rmse(model, test: Interactions) -> float:
    u, i, r, _ = test.to_coo()
    return float(np.sqrt(np.mean((model.predict(u, i) - r) ** 2)))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_beats_global_average(name: str, ml_split) -> None:
    train, test = ml_split
    model = create(name, **SMALL[name]).fit(train)
    base = create("GlobalAverage").fit(train)
    assert rmse(model, test) < rmse(base, test)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_fits_training_data(name: str) -> None:
    data = synthetic(seed=1)
    model = create(name, **SMALL[name]).fit(data)
    u, i, r, _ = data.to_coo()
    train_err = np.sqrt(np.mean((model.predict(u, i) - r) ** 2))
    mean_err = np.sqrt(np.mean((r - r.mean()) ** 2))
    assert train_err < 0.9 * mean_err


@pytest.mark.parametrize("name", SGD_MODELS + ["CCD", "MFALS", "NMF"])
def test_deterministic_for_seed(name: str) -> None:
    data = synthetic(seed=2)
    a = create(name, seed=5, **SMALL[name]).fit(data).score([0, 1, 2])
    b = create(name, seed=5, **SMALL[name]).fit(data).score([0, 1, 2])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_fold_in_reproduces_training_user(name: str) -> None:
    data = synthetic(seed=4, n_users=80, n_items=40, density=0.3)
    model = create(name, **SMALL[name]).fit(data)
    users = np.arange(10)
    rows = sp.csr_array(data.matrix[users])
    folded = model._score_new(rows)
    assert folded.shape == (10, data.n_items) and np.isfinite(folded).all()
    trained = model.score(users)
    corr = [np.corrcoef(folded[r], trained[r])[0, 1] for r in range(10)]
    assert np.median(corr) > 0.6
    rec = model.recommend_new([data.items_of(0)], [data.matrix[[0]].data], k=5)
    assert not np.isin(rec.ids[0], data.items_of(0)).any()


def test_biased_mf_learns_exact_biases() -> None:
    # ratings that are exactly mu + b_u + b_i are reproduced with zero factors' help
    rng = np.random.default_rng(0)
    bu, bi = rng.normal(0, 0.5, 30), rng.normal(0, 0.5, 20)
    u, i = np.meshgrid(np.arange(30), np.arange(20), indexing="ij")
    r = 3.0 + bu[u.ravel()] + bi[i.ravel()]
    data = Interactions.from_arrays(u.ravel(), i.ravel(), r)
    model = create("BiasedMF", factors=2, epochs=200, reg=0.0, reg_bias=0.0, learning_rate=0.02,
                   init_std=0.01).fit(data)
    uu, ii, rr, _ = data.to_coo()
    np.testing.assert_allclose(model.predict(uu, ii), rr, atol=0.05)


def test_mfals_item_step_is_ridge_solution() -> None:
    data = synthetic(seed=6)
    model = create("MFALS", factors=4, epochs=3, reg=0.1).fit(data)
    # the last half-step solved the items exactly from the final user factors
    p = model.user_factors_.astype(np.float64)
    cols = sp.csc_array(data.matrix)
    for i in (0, 7):
        users = cols.indices[cols.indptr[i] : cols.indptr[i + 1]]
        r = cols.data[cols.indptr[i] : cols.indptr[i + 1]] - model.global_bias_
        a = p[users].T @ p[users] + 0.1 * len(users) * np.eye(4)
        expect = np.linalg.solve(a, p[users].T @ r)
        np.testing.assert_allclose(model.item_factors_[i], expect, rtol=1e-3, atol=1e-4)


def test_nmf_factors_non_negative_and_rejects_negative_ratings() -> None:
    data = synthetic(seed=7)
    model = create("NMF", factors=6, epochs=20).fit(data)
    assert (model.user_factors_ >= 0).all() and (model.item_factors_ >= 0).all()
    u, i, r, _ = data.to_coo()
    neg = Interactions.from_arrays(u, i, r - 3.0)
    with pytest.raises(DataError, match="non-negative"):
        create("NMF").fit(neg)


def test_svdpp_user_vector_includes_implicit_sum() -> None:
    data = synthetic(seed=8)
    model = create("SVDPlusPlus", factors=4, epochs=5).fit(data)
    items = data.items_of(3)
    expect = model.free_user_factors_[3] + model.implicit_factors_[items].sum(0) / np.sqrt(len(items))
    np.testing.assert_allclose(model.user_factors_[3], expect, rtol=1e-4, atol=1e-5)


def test_cold_user_gets_bias_prediction() -> None:
    data = synthetic(seed=9)
    keep = data.user_index() != 4
    train = data.subset(keep)  # user 4 keeps its index but has no ratings
    for name in ("BiasedMF", "MFALS", "NMF", "CCD"):
        model = create(name, **SMALL[name]).fit(train)
        p = model.predict(np.array([4, 4]), np.array([0, 1]))
        assert np.all(np.abs(p - model.global_mean_) < 1.5), name


@pytest.mark.parametrize("name", [*SGD_MODELS, "FMSGD"])
def test_huge_learning_rate_is_reported(name: str) -> None:
    with pytest.raises(TrainingError, match="diverged"):
        create(name, learning_rate=1e3, epochs=5, factors=4).fit(synthetic())


@pytest.mark.parametrize(
    "name,params",
    [
        ("BiasedMF", {"factors": 0}),
        ("BiasedMF", {"reg": -1.0}),
        ("PMF", {"learning_rate": 0.0}),
        ("SVDPlusPlus", {"reg_implicit": -0.1}),
        ("CCD", {"inner": 0}),
        ("BPMF", {"burn_in": 50, "epochs": 10}),
        ("BPMF", {"precision": 0.0}),
        ("NMF", {"epochs": 0}),
    ],
)
def test_bad_hyperparameters(name: str, params: dict) -> None:
    key = next(iter(params))
    with pytest.raises(ParameterError, match=key):
        create(name, **params).fit(synthetic())


def test_bpmf_posterior_mean_width() -> None:
    model = create("BPMF", factors=3, epochs=10, burn_in=4, samples=3).fit(synthetic())
    assert model.user_factors_.shape[1] == 9


def test_bpmf_hyperparameter_draws_match_the_normal_wishart_posterior() -> None:
    """BPMF's hyperparameter step against the closed-form Normal-Wishart posterior of
    fixed factor rows x (Bishop 2006, 2.3.6): beta* = beta0 + n, nu* = nu0 + n,
    mu* = n xbar / beta*, W*^-1 = W0^-1 + n S + beta0 n / beta* xbar xbar^T. Over 4,000 draws
    the mean of Lambda must be nu* W* and the mean of mu must be mu*, within four standard
    errors (Var Lambda_ij = nu* (W*_ij^2 + W*_ii W*_jj)), and the covariance of mu must be
    E[(beta* Lambda)^-1] = W*^-1 / (beta* (nu* - k - 1)) within 10%."""
    from recseek.models.factorization.bayesian import _sample_hyper

    rng = np.random.default_rng(0)
    n, k, beta0 = 30, 3, 2.0
    x = rng.normal(0.5, 1.0, (n, k)) @ np.array([[1.0, 0.3, 0.0], [0.0, 1.0, -0.4], [0.0, 0.0, 0.7]])
    xbar, s = x.mean(axis=0), np.cov(x.T, bias=True)
    beta, nu = beta0 + n, k + n
    w_inv = np.eye(k) + n * s + beta0 * n / beta * np.outer(xbar, xbar)
    w = np.linalg.inv(w_inv)
    draws = [_sample_hyper(rng, x, beta0, k, np.eye(k)) for _ in range(4000)]
    mus = np.array([d[0] for d in draws])
    lams = np.array([d[1] for d in draws])
    se_lam = np.sqrt(nu * (w**2 + np.outer(np.diag(w), np.diag(w))) / len(draws))
    assert (np.abs(lams.mean(axis=0) - nu * w) < 4 * se_lam).all()
    cov_mu = w_inv / (beta * (nu - k - 1))
    assert (np.abs(mus.mean(axis=0) - n * xbar / beta) < 4 * np.sqrt(np.diag(cov_mu) / len(draws))).all()
    np.testing.assert_allclose(np.cov(mus.T), cov_mu, rtol=0.1, atol=0.1 * np.abs(cov_mu).max())


def test_bpmf_row_draws_match_the_gaussian_conditional() -> None:
    """BPMF's row step: given the other side's factors b, a row with ratings x_j on items
    j has the conditional N(m, L^-1), L = P + alpha sum_j b_j b_j^T,
    L m = alpha sum_j x_j b_j + P mu0. 5,000 identical rows give 5,000 draws from one call:
    their mean must be m within four standard errors and their covariance L^-1 within 10%."""
    from recseek.models.factorization._bayes import draw_side

    rng = np.random.default_rng(1)
    k, n_items, rows = 3, 12, 5000
    b = rng.normal(0, 0.7, (n_items, k))
    items = np.array([1, 4, 5, 9, 11])
    x = np.array([1.5, -0.5, 0.25, 1.0, -1.0])
    prior_prec = np.array([[2.0, 0.3, 0.0], [0.3, 1.5, 0.2], [0.0, 0.2, 1.0]])
    prior_mean = np.array([0.2, -0.1, 0.3])
    alpha = 2.0
    indptr = np.arange(rows + 1, dtype=np.int64) * len(items)
    indices = np.tile(items, rows).astype(np.int32)
    data = np.tile(x, rows)
    a = np.zeros((rows, k))
    draw_side(indptr, indices, data, a, b, prior_prec, prior_mean, alpha, rng.standard_normal((rows, k)), 2)
    prec = prior_prec + alpha * b[items].T @ b[items]
    cov = np.linalg.inv(prec)
    mean = cov @ (alpha * b[items].T @ x + prior_prec @ prior_mean)
    assert (np.abs(a.mean(axis=0) - mean) < 4 * np.sqrt(np.diag(cov) / rows)).all()
    np.testing.assert_allclose(np.cov(a.T), cov, rtol=0.1, atol=0.1 * np.abs(cov).max())
