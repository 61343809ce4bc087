"""Linear and low-rank models: closed forms, optimality conditions, fold-in, validation."""

from __future__ import annotations

import numpy as np
import pytest

from recseek.errors import ParameterError
from recseek.models import registry
from recseek.models.linear import EASE, SLIM, PureSVD
from recseek.testing.fixtures import synthetic


@pytest.fixture(scope="module")
def data():
    return synthetic(n_users=60, n_items=25, seed=11)


def _binary(data):
    return (data.matrix.toarray() != 0).astype(np.float64)


def test_ease_closed_form_per_column(data):
    reg = 7.0
    model = EASE(reg=reg).fit(data)
    x = _binary(data)
    g = x.T @ x
    b = model.weights_
    assert np.allclose(np.diag(b), 0.0)
    for j in (0, 5, 13):
        others = np.delete(np.arange(data.n_items), j)
        w = np.linalg.solve(g[np.ix_(others, others)] + reg * np.eye(len(others)), g[others, j])
        np.testing.assert_allclose(b[others, j], w, rtol=1e-3, atol=1e-5)


def test_ease_fold_in_equals_training_scores(data):
    model = EASE(reg=5.0).fit(data)
    for u in (0, 17):
        np.testing.assert_allclose(model._score_new(data.matrix[[u]]), model.score([u]), rtol=1e-5, atol=1e-6)


def test_puresvd_reconstruction_and_fold_in(data):
    model = PureSVD(factors=8).fit(data)
    x = data.matrix.toarray().astype(np.float64)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(np.sort(model.singular_values_)[::-1], s[:8], rtol=1e-4)
    best = (u[:, :8] * s[:8]) @ vt[:8]
    np.testing.assert_allclose(model.score(np.arange(data.n_users)), best, rtol=1e-3, atol=1e-3)
    folded = model._score_new(data.matrix[[3, 9]])
    np.testing.assert_allclose(folded, model.score([3, 9]), rtol=1e-3, atol=1e-3)
    # deterministic for a seed
    again = PureSVD(factors=8).fit(data)
    np.testing.assert_array_equal(again.item_factors_, model.item_factors_)


def test_puresvd_too_many_factors(data):
    with pytest.raises(ParameterError, match="factors"):
        PureSVD(factors=data.n_items).fit(data)


def test_slim_satisfies_optimality_conditions(data):
    l1, l2 = 0.5, 2.0
    model = SLIM(neighbors=data.n_items, l1_reg=l1, l2_reg=l2, epochs=500, tol=1e-9).fit(data)
    w = model.weights_.toarray().astype(np.float64)
    x = _binary(data)
    g = x.T @ x
    assert (w >= 0).all() and np.allclose(np.diag(w), 0.0)
    cos = g / np.sqrt(np.outer(np.diag(g), np.diag(g)))
    for j in range(data.n_items):
        cands = np.flatnonzero((cos[:, j] > 0) & (np.arange(data.n_items) != j))
        grad = g[cands] @ w[:, j] - g[cands, j] + l2 * w[cands, j]
        active = w[cands, j] > 0
        np.testing.assert_allclose(grad[active], -l1, atol=1e-3)
        assert (grad[~active] >= -l1 - 1e-3).all()


def test_slim_candidates_limit_nonzeros(data):
    model = SLIM(neighbors=3).fit(data)
    assert np.diff(model.weights_.tocsc().indptr).max() <= 3
    np.testing.assert_allclose(model._score_new(data.matrix[[2]]), model.score([2]), rtol=1e-5)


def test_slim_unconstrained_allows_negative_weights(data):
    model = SLIM(neighbors=data.n_items, l1_reg=0.0, l2_reg=1.0, positive=False).fit(data)
    assert (model.weights_.data < 0).any()


@pytest.mark.parametrize(
    ("name", "params", "word"),
    [
        ("EASE", {"reg": 0.0}, "reg"),
        ("EASE", {"reg": -5.0}, "reg"),
        ("SLIM", {"l1_reg": -1.0}, "l1_reg"),
        ("SLIM", {"neighbors": 0}, "neighbors"),
        ("PureSVD", {"factors": 0}, "factors"),
    ],
)
def test_bad_hyperparameters(name, params, word):
    with pytest.raises(ParameterError, match=word):
        registry.create(name, **params)


def test_ease_guards_huge_catalogues(data):
    with pytest.raises(ParameterError, match="max_items"):
        EASE(max_items=10).fit(data)


def test_item_similarity_of_linear_models(data):
    for model in (EASE(reg=5.0), SLIM(neighbors=5), PureSVD(factors=4)):
        model.fit(data)
        r = model.similar_items([0, 3], k=4)
        assert r.ids.shape == (2, 4)
        assert not np.isin([0], r.ids[0]).any()
