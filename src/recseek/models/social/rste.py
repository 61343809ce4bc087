"""RSTE: recommendation with a social trust ensemble (Ma, King & Lyu, 2009)."""

from __future__ import annotations

import numpy as np

from ...data._interactions import Interactions
from .._params import Float
from ..base import Array, StateSpec
from ..registry import register
from ._base import GRADIENT_CHUNKS, EpochBar, SocialRatingModel, row_normalised, sq


@register
class RSTE(SocialRatingModel):
    """RSTE: a user's rating mixes their own taste with the tastes of the users they trust.

    Model (Ma, King & Lyu 2009, eq. 5)::

        r(u, i) ~ g(alpha u_u . v_i + (1 - alpha) sum_(t in T(u)) S_ut u_t . v_i)

    with ``g`` the logistic function on ratings mapped to [0, 1], ``S`` the trust graph
    normalised to unit row sums. Objective: ``1/2 sum (g(.) - r~)^2 + reg_user/2 |U|^2 +
    reg_item/2 |V|^2``, minimised by full gradient descent (a user's factors get gradient
    from their own ratings and, through ``1 - alpha``, from the ratings of those who
    trust them). Predictions use the ensemble vector ``alpha u_u + (1 - alpha) sum S_ut u_t``,
    stored as ``ensemble_factors_`` (n_users, factors).

    Parameters
    ----------
    factors, epochs, learning_rate : int, int, float
        Latent dimensions, gradient steps, step size.
    reg_user, reg_item : float
        L2 weights of ``U`` (n_users, factors) and ``V`` (n_items, factors).
    alpha : float
        Weight of the user's own taste, in [0, 1] (JStarCraft ``recommender.user.social.ratio``;
        1 ignores the trust graph).
    init_range : float
        Initial factors are drawn uniformly from ``[0, init_range)`` (JStarCraft's start).
    seed : int or None
        Random seed of the initialisation.
    verbose : bool
        Progress bar with the loss.

    Social cold start (:meth:`recommend_for_trust`): a user without ratings is the trust
    ensemble alone, the weighted mean of the trusted users' factors.
    """

    name = "RSTE"
    paper = "Ma, King & Lyu. Learning to Recommend with Social Trust Ensemble. SIGIR 2009"
    rules = {"alpha": Float(lo=0.0, hi=1.0), "init_range": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 150, "learning_rate": 0.05, "alpha": 0.6}
    state: dict[str, StateSpec] = {"ensemble_factors_": Array("float32", ("n_users", "factors"))}

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.02, reg_user: float = 0.001,
                 reg_item: float = 0.001, alpha: float = 0.4, init_range: float = 1.0, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.alpha = alpha
        self.init_range = init_range
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import rste_gradient

        r, targets, trust, rng = self._prepare(train)
        s = row_normalised(trust)
        st = s.T.tocsr()
        u = self._init(rng, train.n_users)
        v = self._init(rng, train.n_items)
        k = u.shape[1]
        alpha = np.float32(self.alpha)
        lr = np.float32(self.learning_rate)
        parts = np.zeros((GRADIENT_CHUNKS, train.n_items, k), dtype=np.float32)
        bar = EpochBar(self, int(self.epochs))
        loss = 0.0
        for epoch in range(int(self.epochs)):
            gu = np.zeros_like(u)
            social = np.zeros_like(u)
            err = rste_gradient(r.indptr, r.indices, targets, u, v, s.indptr, s.indices, s.data, alpha, gu, parts,
                                social)
            gv = parts.sum(axis=0)
            gu += st @ social + np.float32(self.reg_user) * u
            gv += np.float32(self.reg_item) * v
            u -= lr * gu
            v -= lr * gv
            loss = 0.5 * (err + self.reg_user * sq(u) + self.reg_item * sq(v))
            bar.update(loss)
            self._check_finite(epoch, u, v)
        bar.close()
        self.loss_ = float(loss)
        self.user_factors_ = np.ascontiguousarray(u, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(v, dtype=np.float32)
        # users without trust links keep alpha u_u: the social part of their ensemble is empty
        ens = alpha * u + (1.0 - alpha) * (s @ u)
        self.ensemble_factors_ = np.ascontiguousarray(ens, dtype=np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._score_vectors(self.ensemble_factors_[users], items)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._link(np.einsum("ij,ij->i", self.ensemble_factors_[users], self.item_factors_[items]))

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.ensemble_factors_
