"""The aspect model (latent class model) of users, items and ratings, fitted by EM:
AspectModelRanking (co-occurrence) and AspectModelRating (Gaussian ratings per class)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data._interactions import Interactions
from .._params import Float
from ..base import Array, RatingPredictor, StateSpec
from ..registry import register
from ._a_base import TOPIC_RULES, EpochBar, TopicRanker, em_step, item_groups, random_simplex, training_weights

_PAPER = ("Hofmann. Latent Semantic Models for Collaborative Filtering. ACM Transactions on Information "
          "Systems 22(1):89-115, 2004 (the aspect model of Hofmann & Puzicha, Latent Class Models for "
          "Collaborative Filtering, IJCAI 1999)")


def _random_aspects(rng: np.random.Generator, n_users: int, n_items: int, k: int):
    pz = random_simplex(rng, (1, k), axis=1)[0]
    pu = random_simplex(rng, (n_users, k), axis=0)
    pi = random_simplex(rng, (n_items, k), axis=0)
    return pz, pu, pi


@register(aliases=("AspectRanking",))
class AspectModelRanking(TopicRanker):
    """The symmetric aspect model of user-item co-occurrence, fitted by EM.

    Model: ``P(u, i) = sum_z P(z) P(u | z) P(i | z)``; EM maximises
    ``sum_(u,i) w_ui log P(u, i)`` (``w_ui = 1`` with ``binary``, else the training value,
    as JStarCraft weighs pairs by their rating). E-step:
    ``q_uiz ~ P(z) P(u | z) P(i | z)``; M-step with ``n_z = sum w q_uiz``:
    ``P(z) = n_z / sum w``, ``P(u | z) = sum_i w q_uiz / n_z``,
    ``P(i | z) = sum_u w q_uiz / n_z``. Items are ranked by ``P(u, i)``.

    Parameters
    ----------
    factors : int
        Number of latent classes K (JStarCraft ``recommender.topic.number``).
    epochs : int
        EM iterations (``recommender.iterator.maximum``).
    binary : bool
        Weigh every pair 1 (default) or by its value (JStarCraft's choice).
    fold_in_steps : int
        EM rounds when folding in a new user (``P(z | u)`` with ``P(i | z)`` fixed).
    seed : int or None
        Seed of the random initial distributions.
    verbose : bool
        Progress bar with the log-likelihood per iteration.

    Learned state: ``user_topic_`` (n_users, K) ``P(z) P(u | z)``, ``item_topic_``
    (n_items, K) ``P(i | z)``, ``topic_prior_`` (K,) ``P(z)``, ``loglik_`` (epochs,).
    JStarCraft's ``recommender.pgm.burnin`` / ``samplelag`` are Gibbs settings with no role
    in EM.

    Reference: Hofmann, "Latent Semantic Models for Collaborative Filtering", ACM TOIS
    22(1), 2004.
    """

    name = "AspectModelRanking"
    paper = _PAPER
    rules = dict(TOPIC_RULES)
    test_params = {"factors": 4, "epochs": 30}

    def __init__(self, factors: int = 10, epochs: int = 20, binary: bool = True, fold_in_steps: int = 50,
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
        pz, pu, pi = _random_aspects(rng, train.n_users, train.n_items, k)
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        for epoch in bar:
            su, si, _, _, ll = em_step(indptr, indices, weights, pu * pz[None, :], pi, groups=(ptr, pos, usr))
            self.loglik_[epoch] = ll.sum()
            nz = su.sum(axis=0)
            safe = np.where(nz > 0, nz, 1.0)
            pu = su / safe[None, :]
            pi = si / safe[None, :]
            pz = nz / max(nz.sum(), 1e-300)
            self._check_probabilities(epoch, pz, pu, pi)
            bar.report(self.loglik_[epoch])
        self.user_topic_ = (pu * pz[None, :]).astype(np.float32)
        self.item_topic_ = pi.astype(np.float32)
        self.topic_prior_ = pz.astype(np.float32)


@register(aliases=("AspectRating",))
class AspectModelRating(RatingPredictor):
    """The aspect model with Gaussian ratings per latent class, fitted by EM.

    Model: ``p(u, i, r) = sum_z P(z) P(u | z) P(i | z) N(r; mu_z, sigma_z^2)``; EM maximises
    ``sum log p(u, i, r_ui)`` over the training ratings. E-step:
    ``q_uiz ~ P(z) P(u | z) P(i | z) N(r_ui; mu_z, sigma_z^2)``; M-step with
    ``n_z = sum q_uiz``: ``P(z) = n_z / n``, ``P(u | z) = sum_i q_uiz / n_z``,
    ``P(i | z) = sum_u q_uiz / n_z``, ``mu_z`` and ``sigma_z^2`` the q-weighted mean and
    variance of the ratings (``sigma_z`` at least ``min_sigma``). Prediction: the
    expected rating ``sum_z w_z mu_z / sum_z w_z`` with ``w_z = P(z) P(u | z) P(i | z)``.

    Parameters
    ----------
    factors : int
        Number of latent classes K (JStarCraft ``recommender.topic.number``, 10 by default).
    epochs : int
        EM iterations (``recommender.iterator.maximum``).
    min_sigma : float
        Floor of every class's rating standard deviation.
    fold_in_steps : int
        EM rounds when folding in a new user (``P(z | u)`` with the classes fixed).
    seed : int or None
        Seed of the random initial distributions.
    verbose : bool
        Progress bar with the log-likelihood per iteration.

    Learned state: ``user_topic_`` (n_users, K) ``P(z) P(u | z)``, ``item_topic_``
    (n_items, K) ``P(i | z)``, ``topic_mu_`` and ``topic_sigma_`` (K,), ``loglik_``
    (epochs,). JStarCraft's ``recommender.iteration.learnrate`` has no role in EM.

    Reference: Hofmann, "Latent Semantic Models for Collaborative Filtering", ACM TOIS
    22(1), 2004.
    """

    name = "AspectModelRating"
    family = "probabilistic"
    paper = _PAPER
    rules = {**TOPIC_RULES, "min_sigma": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 30}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_topic_": Array("float32", ("n_users", "factors")),
        "item_topic_": Array("float32", ("n_items", "factors")),
        "topic_mu_": Array("float32", ("factors",)),
        "topic_sigma_": Array("float32", ("factors",)),
        "loglik_": Array("float64", ("epochs",), finite=False, history=True),
    }

    def __init__(self, factors: int = 10, epochs: int = 10, min_sigma: float = 0.05, fold_in_steps: int = 20,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
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
        weights = training_weights(train, np.ones_like(r))
        ptr, pos, usr = item_groups(m)
        pz, pu, pi = _random_aspects(rng, train.n_users, train.n_items, k)
        # classes start at spread-out rating levels, so that EM can tell them apart
        mu = np.quantile(r, (np.arange(k) + 0.5) / k)[None, :] + 0.01 * rng.standard_normal((1, k))
        sigma = np.full((1, k), max(r.std(), float(self.min_sigma)))
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        floor = float(self.min_sigma)
        for epoch in bar:
            su, si, sr, sr2, ll = em_step(indptr, indices, weights, pu * pz[None, :], pi, mu, sigma,
                                          groups=(ptr, pos, usr))
            self.loglik_[epoch] = ll.sum()
            nz = su.sum(axis=0)
            safe = np.where(nz > 0, nz, 1.0)
            pu = su / safe[None, :]
            pi = si / safe[None, :]
            pz = nz / max(nz.sum(), 1e-300)
            s1, s2 = sr.sum(axis=0), sr2.sum(axis=0)
            mu_new = np.where(nz > 0, s1 / safe, mu[0])
            var = np.where(nz > 0, s2 / safe - mu_new ** 2, sigma[0] ** 2)
            mu = mu_new[None, :]
            sigma = np.maximum(np.sqrt(np.maximum(var, 0.0)), floor)[None, :]
            self._check_finite(epoch, pz, pu, pi, mu, sigma)
            bar.report(self.loglik_[epoch])
        self.user_topic_ = (pu * pz[None, :]).astype(np.float32)
        self.item_topic_ = pi.astype(np.float32)
        self.topic_mu_ = mu[0].astype(np.float32)
        self.topic_sigma_ = sigma[0].astype(np.float32)

    def fold_in(self, rows) -> np.ndarray:
        """``P(z) P(u | z)``-like weights (n_new, K) of new users from their rating rows:
        ``fold_in_steps`` EM rounds on ``P(z | u)`` with the classes' item distributions
        and rating Gaussians fixed."""
        import scipy.sparse as sp

        from ...errors import DataError

        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        r = np.asarray(rows.data, dtype=np.float64)
        weights = np.ascontiguousarray(np.vstack([np.ones_like(r), r]))
        indptr = np.asarray(rows.indptr, dtype=np.int64)
        indices = np.asarray(rows.indices, dtype=np.int64)
        prior = self.user_topic_.astype(np.float64).sum(axis=0)
        prior /= prior.sum()
        theta = np.tile(prior, (rows.shape[0], 1))
        mu = self.topic_mu_.astype(np.float64)[None, :]
        sigma = self.topic_sigma_.astype(np.float64)[None, :]
        B = self.item_topic_.astype(np.float64)
        groups = item_groups(rows)
        active = np.diff(indptr) > 0
        for _ in range(int(self.fold_in_steps)):
            su = em_step(indptr, indices, weights, theta, B, mu, sigma, groups=groups)[0]
            s = su.sum(axis=1, keepdims=True)
            theta = np.where(active[:, None], su / np.where(s > 0, s, 1.0), prior[None, :])
        return theta.astype(np.float32)

    def _score_new(self, rows) -> np.ndarray:
        U = self.fold_in(rows).astype(np.float64)
        V = self.item_topic_.astype(np.float64)
        den = U @ V.T
        num = (U * self.topic_mu_[None, :]) @ V.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / den, self.global_mean_)
        return np.clip(out, self.rating_min_, self.rating_max_).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """Class memberships ``P(z | i)`` of every item (rows sum to one)."""
        self._check_fitted()
        m = self.item_topic_.astype(np.float64) * self.user_topic_.astype(np.float64).sum(axis=0)[None, :]
        s = m.sum(axis=1, keepdims=True)
        return (m / np.where(s > 0, s, 1.0)).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        V = self.item_topic_ if items is None else self.item_topic_[items]
        U = self.user_topic_[users].astype(np.float64)
        den = U @ V.T.astype(np.float64)
        num = (U * self.topic_mu_[None, :]) @ V.T.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / den, self.global_mean_)
        return out.astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        w = self.user_topic_[users].astype(np.float64) * self.item_topic_[items]
        den = w.sum(axis=1)
        num = w @ self.topic_mu_.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(den > 0, num / den, self.global_mean_)
        return out.astype(np.float32)
