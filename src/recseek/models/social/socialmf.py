"""SocialMF: matrix factorisation with trust propagation (Jamali & Ester, 2010)."""

from __future__ import annotations

import numpy as np

from ...data._interactions import Interactions
from .._params import Float
from ..registry import register
from ._base import EpochBar, SocialRatingModel, row_normalised, sq


@register
class SocialMF(SocialRatingModel):
    """SocialMF: a user's factors are drawn towards the mean factors of the users they trust.

    Objective (Jamali & Ester 2010, eq. 6), minimised by full gradient descent::

        1/2 sum_(u,i) (g(u_u . v_i) - r~_ui)^2 + reg_user/2 |U|^2 + reg_item/2 |V|^2
            + reg_social/2 sum_(u trusts someone) |u_u - sum_v T_uv u_v|^2

    with ``g`` the logistic function, ``r~ = (r - r_min) / (r_max - r_min)`` and ``T`` the
    trust graph normalised to unit row sums. Each epoch is one step of size
    ``learning_rate`` along the gradient of the whole objective (the paper's update; a
    user's factors get the social gradient both as a truster and from the users who trust
    them, trust propagation). Prediction: ``r_min + g(u_u . v_i) (r_max - r_min)``.

    Parameters
    ----------
    factors : int
        Latent dimensions (JStarCraft ``recommender.factor.number``).
    epochs : int
        Gradient steps (``recommender.iterator.maximum``).
    learning_rate : float
        Step size (``recommender.iterator.learnrate``).
    reg_user, reg_item : float
        L2 weights of the user factors ``U`` (n_users, factors) and item factors ``V``
        (n_items, factors) (``recommender.user.regularization`` / ``item.regularization``).
    reg_social : float
        Weight ``lambda_T`` of the trust-propagation term (``recommender.social.regularization``).
    init_range : float
        Initial factors are drawn uniformly from ``[0, init_range)`` (JStarCraft's start).
    seed : int or None
        Random seed of the initialisation.
    verbose : bool
        Progress bar with the loss.

    Social cold start: :meth:`recommend_for_trust` gives a new user the trust-weighted
    mean of the trusted users' factors, the model's own prior for a user's factors.
    """

    name = "SocialMF"
    paper = ("Jamali & Ester. A Matrix Factorization Technique with Trust Propagation for Recommendation "
             "in Social Networks. RecSys 2010")
    rules = {"reg_social": Float(lo=0.0), "init_range": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 150, "learning_rate": 0.05}

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.02, reg_user: float = 0.001,
                 reg_item: float = 0.001, reg_social: float = 1.0, init_range: float = 1.0, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.reg_social = reg_social
        self.init_range = init_range
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import pair_gradient

        r, targets, trust, rng = self._prepare(train)
        tn = row_normalised(trust)
        has_links = (np.diff(tn.indptr) > 0)[:, None]
        tnt = tn.T.tocsr()
        u = self._init(rng, train.n_users)
        v = self._init(rng, train.n_items)
        k = u.shape[1]
        lr = np.float32(self.learning_rate)
        parts = self._parts(train.n_items, k)
        bar = EpochBar(self, int(self.epochs))
        for epoch in range(int(self.epochs)):
            gu = np.zeros_like(u)
            err = pair_gradient(r.indptr, r.indices, targets, u, v, True, np.float32(1.0), np.float32(0.0),
                                np.float32(0.0), gu, parts)
            gv = parts.sum(axis=0)
            gu += np.float32(self.reg_user) * u
            gv += np.float32(self.reg_item) * v
            d = np.where(has_links, u - tn @ u, 0.0).astype(np.float32)
            gu += np.float32(self.reg_social) * (d - tnt @ d)
            u -= lr * gu
            v -= lr * gv
            loss = 0.5 * (err + self.reg_user * sq(u) + self.reg_item * sq(v)
                          + self.reg_social * sq(d))
            bar.update(loss)
            self._check_finite(epoch, u, v)
        bar.close()
        self.loss_ = float(loss)
        self.user_factors_ = np.ascontiguousarray(u, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(v, dtype=np.float32)
