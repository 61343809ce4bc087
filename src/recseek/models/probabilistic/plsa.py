"""Probabilistic latent semantic analysis for collaborative filtering: PLSA (ranking,
multinomial items) and GPLSA (rating, Gaussian ratings), both fitted by EM."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data._interactions import Interactions
from .._params import Float, Int
from ..base import Array, RatingPredictor, Scalar, StateSpec
from ..registry import register
from ._a_base import TOPIC_RULES, EpochBar, TopicRanker, em_step, item_groups, random_simplex, training_weights

_HOFMANN_2004 = ("Hofmann. Latent Semantic Models for Collaborative Filtering. ACM Transactions on "
                 "Information Systems 22(1):89-115, 2004")


@register
class PLSA(TopicRanker):
    """Probabilistic latent semantic analysis of implicit feedback (the co-occurrence
    aspect model of users and items), fitted by EM.

    Model: ``P(i | u) = sum_z P(z | u) P(i | z)``; EM maximises the log-likelihood
    ``sum_(u,i) w_ui log P(i | u)`` over the training pairs (``w_ui = 1``, or the value
    with ``binary=False``). E-step: ``q_uiz ~ P(z | u) P(i | z)``; M-step:
    ``P(z | u) ~ sum_i w_ui q_uiz`` and ``P(i | z) ~ sum_u w_ui q_uiz``. Items are ranked by
    ``P(i | u)``.

    Parameters
    ----------
    factors : int
        Number of latent topics K (JStarCraft ``recommender.topic.number``).
    epochs : int
        EM iterations (``recommender.iterator.maximum``).
    binary : bool
        Count every training pair once (JStarCraft binarises PLSA's input); ``False``
        weighs a pair by its value.
    fold_in_steps : int
        EM rounds when folding in a new user (``P(i | z)`` fixed).
    seed : int or None
        Seed of the random initial distributions.
    verbose : bool
        Progress bar with the training log-likelihood per iteration.

    Learned state: ``user_topic_`` (n_users, K) ``P(z | u)``, ``item_topic_`` (n_items, K)
    ``P(i | z)`` (columns sum to one), ``topic_prior_`` (K,) ``P(z)``, ``loglik_``
    (epochs,) the log-likelihood after each E-step. JStarCraft's
    ``recommender.iteration.learnrate`` has no role in EM and has no counterpart.

    Reference: Hofmann, "Latent Semantic Models for Collaborative Filtering", ACM TOIS
    22(1), 2004.
    """

    name = "PLSA"
    paper = _HOFMANN_2004
    rules = dict(TOPIC_RULES)
    test_params = {"factors": 4, "epochs": 30}

    def __init__(self, factors: int = 10, epochs: int = 100, binary: bool = True, fold_in_steps: int = 50,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.binary = binary
        self.fold_in_steps = fold_in_steps
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        m = train.matrix
        indptr = np.asarray(m.indptr, dtype=np.int64)
        indices = np.asarray(m.indices, dtype=np.int64)
        weights = training_weights(train, self._weights(train))
        ptr, pos, usr = item_groups(m)
        theta = random_simplex(rng, (train.n_users, k), axis=1)
        phi = random_simplex(rng, (train.n_items, k), axis=0)
        active = np.diff(indptr) > 0
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        su = np.zeros((train.n_users, k))
        for epoch in bar:
            su, si, _, _, ll = em_step(indptr, indices, weights, theta, phi, groups=(ptr, pos, usr))
            self.loglik_[epoch] = ll.sum()
            rs = su.sum(axis=1, keepdims=True)
            theta = np.where(active[:, None], su / np.where(rs > 0, rs, 1.0), 1.0 / k)
            cs = si.sum(axis=0, keepdims=True)
            phi = si / np.where(cs > 0, cs, 1.0)
            self._check_probabilities(epoch, theta, phi)
            bar.report(self.loglik_[epoch])
        self.user_topic_ = theta.astype(np.float32)
        self.item_topic_ = phi.astype(np.float32)
        total = su.sum()
        self.topic_prior_ = (su.sum(axis=0) / (total if total > 0 else 1.0)).astype(np.float32)


@register
class GPLSA(RatingPredictor):
    """Gaussian probabilistic latent semantic analysis: each user is a mixture of
    latent communities, each community rates item i with its own Gaussian.

    Ratings are first normalised per user, ``v = (r - mu_u) / sigma_u``, with the user's
    mean and standard deviation shrunk towards the global ones by ``smooth_weight``
    pseudo-ratings. Model: ``p(v | u, i) = sum_z P(z | u) N(v; mu_iz, sigma_iz^2)``. EM
    (tempered by ``beta``) maximises ``sum log p(v_ui | u, i)``: E-step
    ``q_uiz ~ (P(z | u) N(v_ui; mu_iz, sigma_iz^2))^beta``; M-step ``P(z | u) ~ sum_i q_uiz``,
    ``mu_iz`` and ``sigma_iz^2`` the q-weighted mean and variance of item i's normalised
    ratings, each shrunk towards the item's overall mean and variance by ``prior_weight``
    pseudo-ratings, with ``sigma_iz`` at least ``min_sigma``. Prediction:
    ``mu_u + sigma_u sum_z P(z | u) mu_iz``.

    Parameters
    ----------
    factors : int
        Number of latent communities K (JStarCraft ``recommender.topic.number``).
    epochs : int
        EM iterations (``recommender.iterator.maximum``).
    smooth_weight : float
        Pseudo-ratings at the global mean and variance added to each user's statistics
        (``recommender.recommender.smoothWeight``).
    beta : float
        Tempered-EM exponent of the E-step (1: plain EM).
    prior_weight : float
        Pseudo-ratings at the item's overall mean and variance in each ``mu_iz``,
        ``sigma_iz``.
    min_sigma : float
        Floor of every ``sigma_iz`` (in normalised rating units).
    fold_in_steps : int
        EM rounds when folding in a new user (``P(z | u)`` with the item Gaussians fixed;
        the user's mean and deviation from their ratings, smoothed as in training).
    seed : int or None
        Seed of the random initial ``P(z | u)``.
    verbose : bool
        Progress bar with the log-likelihood per iteration.

    Learned state: ``user_topic_`` (n_users, K) ``P(z | u)``; ``item_mu_``,
    ``item_sigma_`` (n_items, K); ``user_mu_``, ``user_sigma_`` (n_users,); ``rating_var_``
    the training ratings' variance; ``loglik_`` (epochs,).

    Reference: Hofmann, "Collaborative Filtering via Gaussian Probabilistic Latent
    Semantic Analysis", SIGIR 2003.
    """

    name = "GPLSA"
    family = "probabilistic"
    paper = ("Hofmann. Collaborative Filtering via Gaussian Probabilistic Latent Semantic Analysis. "
             "SIGIR 2003")
    rules = {**TOPIC_RULES, "smooth_weight": Float(lo=0.0), "beta": Float(lo=0.0, lo_open=True, hi=1.0),
             "prior_weight": Float(lo=0.0), "min_sigma": Float(lo=0.0, lo_open=True), "factors": Int(lo=1)}
    test_params = {"factors": 4, "epochs": 20}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_topic_": Array("float32", ("n_users", "factors")),
        "item_mu_": Array("float32", ("n_items", "factors")),
        "item_sigma_": Array("float32", ("n_items", "factors")),
        "user_mu_": Array("float32", ("n_users",)),
        "user_sigma_": Array("float32", ("n_users",)),
        "loglik_": Array("float64", ("epochs",), finite=False, history=True),
        "rating_var_": Scalar(float),
    }

    def __init__(self, factors: int = 10, epochs: int = 100, smooth_weight: float = 2.0, beta: float = 1.0,
                 prior_weight: float = 2.0, min_sigma: float = 0.1, fold_in_steps: int = 20, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.smooth_weight = smooth_weight
        self.beta = beta
        self.prior_weight = prior_weight
        self.min_sigma = min_sigma
        self.fold_in_steps = fold_in_steps
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        m = train.matrix
        indptr = np.asarray(m.indptr, dtype=np.int64)
        indices = np.asarray(m.indices, dtype=np.int64)
        r = np.asarray(m.data, dtype=np.float64)
        counts = np.diff(indptr).astype(np.float64)
        rows = np.repeat(np.arange(train.n_users), np.diff(indptr))
        g_mean = r.mean()
        g_var = r.var()
        mu_u, sigma_u = self._user_scale(r, counts, rows, g_mean, g_var)
        v = (r - mu_u[rows]) / sigma_u[rows]
        weights = np.ascontiguousarray(np.vstack([np.ones_like(v), v]))
        ptr, pos, usr = item_groups(m)
        # item statistics of the normalised ratings (the prior of every mu_iz, sigma_iz)
        icount = np.diff(ptr).astype(np.float64)
        isum = np.bincount(indices, weights=v, minlength=train.n_items)
        imean = np.where(icount > 0, isum / np.maximum(icount, 1.0), 0.0)
        ivar = np.bincount(indices, weights=(v - imean[indices]) ** 2, minlength=train.n_items)
        pw = float(self.prior_weight)
        ivar = (ivar + pw * 1.0) / (icount + pw) if pw > 0 else np.where(icount > 0, ivar / np.maximum(icount, 1), 1.0)
        floor = float(self.min_sigma)
        mu = np.repeat(imean[:, None], k, axis=1) + 0.01 * rng.standard_normal((train.n_items, k))
        sigma = np.maximum(np.sqrt(np.repeat(ivar[:, None], k, axis=1)), floor)
        theta = random_simplex(rng, (train.n_users, k), axis=1)
        ones = np.ones((train.n_items, k), dtype=np.float64)
        groups = (ptr, pos, usr)
        active = counts > 0
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        for epoch in bar:
            su, si, sr, sr2, ll = em_step(indptr, indices, weights, theta, ones, mu, sigma, per_item=True,
                                          temper=float(self.beta), groups=groups)
            self.loglik_[epoch] = ll.sum()
            rs = su.sum(axis=1, keepdims=True)
            theta = np.where(active[:, None], su / np.where(rs > 0, rs, 1.0), 1.0 / k)
            n = si + pw
            mu = (sr + pw * imean[:, None]) / np.where(n > 0, n, 1.0)
            var = (sr2 - 2 * mu * sr + mu * mu * si + pw * (ivar[:, None] + (imean[:, None] - mu) ** 2))
            var = var / np.where(n > 0, n, 1.0)
            sigma = np.maximum(np.sqrt(np.maximum(var, 0.0)), floor)
            self._check_finite(epoch, theta, mu, sigma)
            bar.report(self.loglik_[epoch])
        self.user_topic_ = theta.astype(np.float32)
        self.item_mu_ = mu.astype(np.float32)
        self.item_sigma_ = sigma.astype(np.float32)
        self.user_mu_ = mu_u.astype(np.float32)
        self.user_sigma_ = sigma_u.astype(np.float32)
        self.rating_var_ = float(g_var)

    def _user_scale(self, r: np.ndarray, counts: np.ndarray, rows: np.ndarray,
                    g_mean: float, g_var: float) -> tuple[np.ndarray, np.ndarray]:
        sw = float(self.smooth_weight)
        n = len(counts)
        den = np.maximum(counts + sw, 1e-12)
        mu_u = (np.bincount(rows, weights=r, minlength=n) + sw * g_mean) / den
        dev = np.bincount(rows, weights=(r - mu_u[rows]) ** 2, minlength=n)
        sigma_u = np.sqrt((dev + sw * g_var) / den)
        return mu_u, np.where(sigma_u > 1e-6, sigma_u, max(np.sqrt(g_var), 1e-3))

    def _score_new(self, rows) -> np.ndarray:
        """Predicted ratings of new users from their rating rows (fold-in)."""
        import scipy.sparse as sp

        from ...errors import DataError

        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        k = self.user_topic_.shape[1]
        indptr = np.asarray(rows.indptr, dtype=np.int64)
        indices = np.asarray(rows.indices, dtype=np.int64)
        r = np.asarray(rows.data, dtype=np.float64)
        counts = np.diff(indptr).astype(np.float64)
        who = np.repeat(np.arange(rows.shape[0]), np.diff(indptr))
        mu_u, sigma_u = self._user_scale(r, counts, who, self.global_mean_, self.rating_var_)
        v = (r - mu_u[who]) / sigma_u[who]
        weights = np.ascontiguousarray(np.vstack([np.ones_like(v), v]))
        theta = np.full((rows.shape[0], k), 1.0 / k)
        ones = np.ones((self.n_items_, k), dtype=np.float64)
        mu = self.item_mu_.astype(np.float64)
        sigma = self.item_sigma_.astype(np.float64)
        groups = item_groups(rows)
        active = counts > 0
        for _ in range(int(self.fold_in_steps)):
            su = em_step(indptr, indices, weights, theta, ones, mu, sigma, per_item=True,
                         temper=float(self.beta), groups=groups)[0]
            s = su.sum(axis=1, keepdims=True)
            theta = np.where(active[:, None], su / np.where(s > 0, s, 1.0), 1.0 / k)
        out = mu_u[:, None] + sigma_u[:, None] * (theta @ mu.T)
        return np.clip(out, self.rating_min_, self.rating_max_).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        mu = self.item_mu_ if items is None else self.item_mu_[items]
        z = self.user_topic_[users] @ mu.T
        return (self.user_mu_[users, None] + self.user_sigma_[users, None] * z).astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        z = np.einsum("nk,nk->n", self.user_topic_[users], self.item_mu_[items])
        return (self.user_mu_[users] + self.user_sigma_[users] * z).astype(np.float32)
