"""Hierarchical Poisson factorisation (BPoissMF), fitted by coordinate-ascent variational
inference."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register
from ._a_base import TOPIC_RULES, EpochBar, em_step, item_groups, training_weights


def _geometric_expectation(shape: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """``exp(E[log x])`` of Gamma(shape, rate) variables: ``exp(psi(shape)) / rate``."""
    from scipy.special import digamma

    return np.exp(digamma(shape)) / rate


@register
class BPoissMF(Recommender):
    """Hierarchical Poisson factorisation of counts or implicit feedback.

    Model: user activity ``xi_u ~ Gamma(a', a'/b')`` and preferences
    ``theta_uk ~ Gamma(a, xi_u)``; item popularity ``eta_i ~ Gamma(c', c'/d')`` and
    attributes ``beta_ik ~ Gamma(c, eta_i)``; every cell ``y_ui ~ Poisson(theta_u . beta_i)``
    (zeros included, at the cost of the non-zeros only). Mean-field variational
    inference with Gamma factors (Gopalan, Hofman & Blei 2015, Fig. 5): for each non-zero,
    the multinomial ``phi_uik ~ exp(E[log theta_uk] + E[log beta_ik])``; then
    ``shape(theta_uk) = a + sum_i y_ui phi_uik``, ``rate(theta_uk) = E[xi_u] + sum_i E[beta_ik]``,
    ``rate(xi_u) = a'/b' + sum_k E[theta_uk]``, and the same for items. Items are ranked by
    ``E[theta_u] . E[beta_i]``. The progress bar shows the Poisson log-likelihood of the
    training matrix (every cell) under those means.

    Parameters
    ----------
    factors : int
        Latent dimensions K (JStarCraft ``recommender.factor.number``).
    epochs : int
        Variational iterations (``recommender.iterator.maximum``).
    a, a_activity, b_activity : float
        Shape of the preferences, and shape and mean of the user activity (a, a', b').
    c, c_popularity, d_popularity : float
        Shape of the attributes, and shape and mean of the item popularity (c, c', d').
    binary : bool
        Count every training pair as 1 instead of its value.
    fold_in_steps : int
        Variational iterations over a new user's preferences, the items fixed.
    seed : int or None
        Seed of the random initial variational parameters.
    verbose : bool
        Progress bar with the log-likelihood per iteration.

    Learned state: ``user_shape_``, ``user_rate_`` (n_users, K) and ``item_shape_``,
    ``item_rate_`` (n_items, K) the Gamma factors of ``theta`` and ``beta``;
    ``user_factors_`` (n_users, K) and ``item_factors_`` (n_items, K) their means;
    ``loglik_`` (epochs,). JStarCraft's bpoissmf settings (learning rate, regularisation,
    bold driver) belong to a gradient method and have no counterpart here; its factor
    number and iteration count map to ``factors`` and ``epochs``.

    Reference: Gopalan, Hofman, Blei, "Scalable Recommendation with Hierarchical Poisson
    Factorization", UAI 2015.
    """

    name = "BPoissMF"
    family = "probabilistic"
    task = "ranking"
    paper = ("Gopalan, Hofman, Blei. Scalable Recommendation with Hierarchical Poisson Factorization. "
             "UAI 2015")
    rules = {**TOPIC_RULES, **{n: Float(lo=0.0, lo_open=True) for n in
                               ("a", "a_activity", "b_activity", "c", "c_popularity", "d_popularity")},
             "fold_in_steps": Int(lo=1)}
    test_params = {"factors": 6, "epochs": 40}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_shape_": Array("float32", ("n_users", "factors")),
        "user_rate_": Array("float32", ("n_users", "factors")),
        "item_shape_": Array("float32", ("n_items", "factors")),
        "item_rate_": Array("float32", ("n_items", "factors")),
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "loglik_": Array("float64", ("epochs",), finite=False, history=True),
    }

    def __init__(self, factors: int = 10, epochs: int = 100, a: float = 0.3, a_activity: float = 0.3,
                 b_activity: float = 1.0, c: float = 0.3, c_popularity: float = 0.3, d_popularity: float = 1.0,
                 binary: bool = False, fold_in_steps: int = 30, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.a = a
        self.a_activity = a_activity
        self.b_activity = b_activity
        self.c = c
        self.c_popularity = c_popularity
        self.d_popularity = d_popularity
        self.binary = binary
        self.fold_in_steps = fold_in_steps
        self.seed = seed
        self.verbose = verbose

    def _counts(self, data: np.ndarray) -> np.ndarray:
        data = np.asarray(data, dtype=np.float64)
        if self.binary:
            return np.ones_like(data)
        if (data < 0).any():
            raise DataError(f"{self.display_name}: Poisson counts must be non-negative (or use binary=True)")
        return data

    def _fit(self, train: Interactions) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        m = train.matrix
        indptr = np.asarray(m.indptr, dtype=np.int64)
        indices = np.asarray(m.indices, dtype=np.int64)
        y = self._counts(m.data)
        weights = training_weights(train, y)
        groups = item_groups(m)
        n_u, n_i = train.n_users, train.n_items
        a, a1, b1 = float(self.a), float(self.a_activity), float(self.b_activity)
        c, c1, d1 = float(self.c), float(self.c_popularity), float(self.d_popularity)
        # initialisation as in the authors' code: priors plus small uniform noise
        g_shp = a + 0.01 * rng.random((n_u, k))
        g_rte = a1 / b1 + 0.01 * rng.random((n_u, k))
        l_shp = c + 0.01 * rng.random((n_i, k))
        l_rte = c1 / d1 + 0.01 * rng.random((n_i, k))
        k_rte = np.full(n_u, a1 / b1) + 0.01 * rng.random(n_u)
        t_rte = np.full(n_i, c1 / d1) + 0.01 * rng.random(n_i)
        k_shp = a1 + k * a
        t_shp = c1 + k * c
        rows = np.repeat(np.arange(n_u), np.diff(indptr))
        log_fact = _log_factorial(y)
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        for epoch in bar:
            su, si, _, _, _ = em_step(indptr, indices, weights, _geometric_expectation(g_shp, g_rte),
                                      _geometric_expectation(l_shp, l_rte), groups=groups)
            g_shp = a + su
            l_shp = c + si
            g_rte = (k_shp / k_rte)[:, None] + (l_shp / l_rte).sum(axis=0)[None, :]
            k_rte = a1 / b1 + (g_shp / g_rte).sum(axis=1)
            l_rte = (t_shp / t_rte)[:, None] + (g_shp / g_rte).sum(axis=0)[None, :]
            t_rte = c1 / d1 + (l_shp / l_rte).sum(axis=1)
            theta, beta = g_shp / g_rte, l_shp / l_rte
            self._check_finite(epoch, theta, beta)
            rate = np.einsum("nk,nk->n", theta[rows], beta[indices])
            self.loglik_[epoch] = float(np.sum(y * np.log(rate) - log_fact) - theta.sum(axis=0) @ beta.sum(axis=0))
            bar.report(self.loglik_[epoch])
        self.user_shape_ = g_shp.astype(np.float32)
        self.user_rate_ = g_rte.astype(np.float32)
        self.item_shape_ = l_shp.astype(np.float32)
        self.item_rate_ = l_rte.astype(np.float32)
        self.user_factors_ = (g_shp / g_rte).astype(np.float32)
        self.item_factors_ = (l_shp / l_rte).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        V = self.item_factors_ if items is None else self.item_factors_[items]
        return (self.user_factors_[users] @ V.T).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """Preference means ``E[theta_u]`` (n_new, K) of new users from their rows: the
        user updates of the fit, ``fold_in_steps`` times, the item factors fixed."""
        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        k = self.item_factors_.shape[1]
        n = rows.shape[0]
        a, a1, b1 = float(self.a), float(self.a_activity), float(self.b_activity)
        y = self._counts(rows.data)
        weights = np.ascontiguousarray(np.vstack([y, np.asarray(rows.data, dtype=np.float64)]))
        indptr = np.asarray(rows.indptr, dtype=np.int64)
        indices = np.asarray(rows.indices, dtype=np.int64)
        B = _geometric_expectation(self.item_shape_.astype(np.float64), self.item_rate_.astype(np.float64))
        beta_sum = self.item_factors_.astype(np.float64).sum(axis=0)
        g_shp = np.full((n, k), a)
        g_rte = np.full((n, k), a1 / b1)
        k_rte = np.full(n, a1 / b1)
        k_shp = a1 + k * a
        groups = item_groups(rows)
        for _ in range(int(self.fold_in_steps)):
            su, _, _, _, _ = em_step(indptr, indices, weights, _geometric_expectation(g_shp, g_rte), B,
                                     groups=groups)
            g_shp = a + su
            g_rte = (k_shp / k_rte)[:, None] + beta_sum[None, :]
            k_rte = a1 / b1 + (g_shp / g_rte).sum(axis=1)
        return (g_shp / g_rte).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return (self.fold_in(rows) @ self.item_factors_.T).astype(np.float32)


def _log_factorial(y: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(y + 1.0)
