"""LLORMA: kernel weights, the weighted-average prediction, fold-in, determinism, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recseek.data import Interactions
from recseek.errors import ParameterError, TrainingError
from recseek.models import create
from recseek.models.factorization._llorma import kernel_weights
from recseek.testing.fixtures import holdout_last, ml100k_sample, synthetic

SMALL = {"factors": 4, "epochs": 60, "learning_rate": 0.05, "anchors": 8, "global_factors": 8, "global_epochs": 40,
         "global_learning_rate": 0.01, "init_std": 0.1}


@pytest.fixture(scope="module")
def data() -> Interactions:
    return synthetic(seed=2)


@pytest.fixture(scope="module")
def fitted(data):
    return create("LLORMA", **SMALL).fit(data)


def test_kernel_weights_epanechnikov_on_angle() -> None:
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    w = kernel_weights(v, v[:1], 0.8)[0]
    assert w.shape == (5,)
    assert w[0] == pytest.approx(0.75)
    # orthogonal: distance 1 > width 0.8 -> 0; zero vector counts as orthogonal; opposite -> 0
    assert w[1] == 0.0 and w[3] == 0.0 and w[4] == 0.0
    d = 2 / math.pi * math.pi / 4  # 45 degrees -> distance 0.5
    assert w[2] == pytest.approx(0.75 * (1 - (d / 0.8) ** 2), rel=1e-5)


def test_prediction_is_kernel_weighted_average_of_local_models(fitted, data) -> None:
    m = fitted
    assert m.user_factors_.shape == (8, data.n_users, 4)
    assert m.item_factors_.shape == (8, data.n_items, 4)
    assert m.user_weights_.shape == (8, data.n_users)
    # the stored weights are the kernels of the global embeddings towards the anchors
    np.testing.assert_allclose(
        m.user_weights_, kernel_weights(m.global_user_factors_, m.global_user_factors_[m.anchor_users_], m.width),
        atol=1e-6)
    rng = np.random.default_rng(0)
    u = rng.integers(0, data.n_users, 50)
    i = rng.integers(0, data.n_items, 50)
    w = m.user_weights_[:, u] * m.item_weights_[:, i]
    local = np.einsum("tnk,tnk->tn", m.user_factors_[:, u], m.item_factors_[:, i])
    den = w.sum(axis=0)
    expect = np.where(den > 0, (w * local).sum(axis=0) / np.where(den > 0, den, 1), m.global_mean_)
    np.testing.assert_allclose(m._predict(u, i), expect, rtol=1e-4, atol=1e-4)
    # the BLAS scoring path agrees with the pair kernel
    scores = m.score(u)
    np.testing.assert_allclose(scores[np.arange(50), i], expect, rtol=1e-4, atol=1e-4)
    # the anchors' own (user, item) pairs are reached by at least their own local model
    assert np.all(m.user_weights_[np.arange(8), m.anchor_users_] > 0)
    assert np.all(m.item_weights_[np.arange(8), m.anchor_items_] > 0)


def test_unreached_pairs_fall_back_to_global_mean(data) -> None:
    m = create("LLORMA", **SMALL).fit(data)
    m.user_weights_[:, 0] = 0.0
    np.testing.assert_allclose(m._predict(np.array([0, 0]), np.array([1, 2])), m.global_mean_, rtol=1e-6)
    np.testing.assert_allclose(m.score([0]), m.global_mean_, rtol=1e-6)


def test_fits_training_data_and_beats_global_average() -> None:
    try:
        full = ml100k_sample(300)
    except FileNotFoundError:
        pytest.skip("MovieLens sample not available")
    train, test = holdout_last(full)
    model = create("LLORMA", **{**SMALL, "epochs": 40, "anchors": 10}).fit(train)
    base = create("GlobalAverage").fit(train)
    u, i, r, _ = test.to_coo()
    rmse = np.sqrt(np.mean((model.predict(u, i) - r) ** 2))
    rmse_base = np.sqrt(np.mean((base.predict(u, i) - r) ** 2))
    assert rmse < rmse_base
    tu, ti, tr, _ = train.to_coo()
    train_rmse = np.sqrt(np.mean((model.predict(tu, ti) - tr) ** 2))
    assert train_rmse < 0.9 * np.sqrt(np.mean((tr - tr.mean()) ** 2))


def test_deterministic_and_thread_independent(data, fitted) -> None:
    from recseek._numba import get_num_threads, set_num_threads

    before = get_num_threads()
    set_num_threads(1)
    try:
        again = create("LLORMA", **SMALL).fit(data)
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(again.user_factors_, fitted.user_factors_)
    np.testing.assert_array_equal(again.item_factors_, fitted.item_factors_)
    np.testing.assert_array_equal(again.anchor_items_, fitted.anchor_items_)
    other = create("LLORMA", **{**SMALL, "seed": 7}).fit(data)
    assert not np.array_equal(other.user_factors_, fitted.user_factors_)


def test_fold_in_training_user_reproduces_its_scores(fitted, data) -> None:
    users = np.flatnonzero(np.diff(data.matrix.indptr) >= 5)[:20]
    rows = sp.csr_array(data.matrix[users])
    new = fitted._score_new(rows)
    old = fitted.score(users)
    assert new.shape == old.shape
    corr = [np.corrcoef(new[r], old[r])[0, 1] for r in range(len(users))]
    assert np.median(corr) > 0.6
    # and the folded-in predictions fit the user's own ratings better than the mean
    err_new = np.mean([np.abs(new[r, rows.indices[rows.indptr[r]:rows.indptr[r + 1]]]
                              - rows.data[rows.indptr[r]:rows.indptr[r + 1]]).mean() for r in range(len(users))])
    err_mean = np.mean(np.abs(rows.data - fitted.global_mean_))
    assert err_new < err_mean
    rec = fitted.recommend_new([rows.indices[rows.indptr[0]:rows.indptr[1]]],
                               [rows.data[rows.indptr[0]:rows.indptr[1]]], k=5)
    assert rec.ids.shape == (1, 5) and np.all(rec.ids >= 0)


def test_fold_in_user_without_ratings_scores_global_mean(fitted, data) -> None:
    rows = sp.csr_array((1, data.n_items), dtype=np.float32)
    np.testing.assert_allclose(fitted._score_new(rows), fitted.global_mean_, rtol=1e-6)


def test_save_load_keeps_stacked_local_models(fitted, tmp_path) -> None:
    from recseek.models.base import Recommender

    fitted.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    np.testing.assert_array_equal(back.user_factors_, fitted.user_factors_)
    np.testing.assert_allclose(back.score([0, 1, 2]), fitted.score([0, 1, 2]))


@pytest.mark.parametrize("param,value", [("anchors", 0), ("width", 0.0), ("global_factors", 0), ("factors", 0),
                                         ("reg", -1.0), ("global_reg", -0.1), ("global_learning_rate", 0.0)])
def test_parameter_validation(param: str, value, data) -> None:
    with pytest.raises(ParameterError, match=param):
        create("LLORMA", **{**SMALL, param: value}).fit(data)


def test_divergence_is_detected(data) -> None:
    with pytest.raises(TrainingError, match="epoch"):
        create("LLORMA", **{**SMALL, "learning_rate": 1e6, "init_std": 1.0}).fit(data)
