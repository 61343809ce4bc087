"""SoRec: social recommendation by joint factorisation of ratings and trust (Ma et al., 2008)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float
from ..base import Array, StateSpec
from ..registry import register
from ._base import EpochBar, SocialRatingModel, sq


@register
class SoRec(SocialRatingModel):
    """SoRec: the rating matrix and the trust matrix share the user factors.

    Objective (Ma, Yang, Lyu & King 2008, eq. 11), minimised by full gradient descent::

        1/2 sum_(u,i) (g(u_u . v_i) - r~_ui)^2 + reg_social/2 sum_(u,v) (g(u_u . z_v) - c*_uv)^2
            + reg_user/2 |U|^2 + reg_item/2 |V|^2 + reg_trustee/2 |Z|^2

    over the rated pairs and the trust links ``(u, v)``, with ``g`` the logistic function,
    ``r~ = (r - r_min) / (r_max - r_min)`` and the degree-weighted trust
    ``c*_uv = c_uv sqrt(d-(v) / (d+(u) + d-(v)))`` (``d+``: out-degree of the truster,
    ``d-``: in-degree of the trustee). Prediction: ``r_min + g(u_u . v_i) (r_max - r_min)``.

    Parameters
    ----------
    factors, epochs, learning_rate : int, int, float
        Latent dimensions, gradient steps, step size (JStarCraft
        ``recommender.factor.number``, ``iterator.maximum``, ``iterator.learnrate``).
    reg_user, reg_item : float
        L2 weights of the user factors ``U`` (n_users, factors) and item factors ``V``
        (n_items, factors).
    reg_social : float
        ``lambda_C``: weight of the trust-reconstruction loss
        (``recommender.rate.social.regularization``).
    reg_trustee : float
        L2 weight of the trustee factors ``Z`` (n_users, factors)
        (``recommender.user.social.regularization``).
    init_range : float
        Initial factors are drawn uniformly from ``[0, init_range)`` (JStarCraft's start).
    seed : int or None
        Random seed of the initialisation.
    verbose : bool
        Progress bar with the loss.

    Learned state also holds ``trustee_factors_`` (Z). Social cold start
    (:meth:`recommend_for_trust`): a new user's factors solve the trust part of the
    objective for their links, ``min sum_v (g(u . z_v) - c_v)^2 + reg_user |u|^2``, by
    gradient steps from the mean factors of the trusted users.
    """

    name = "SoRec"
    paper = ("Ma, Yang, Lyu & King. SoRec: Social Recommendation Using Probabilistic Matrix Factorization. "
             "CIKM 2008")
    rules = {"reg_social": Float(lo=0.0), "reg_trustee": Float(lo=0.0), "init_range": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 150, "learning_rate": 0.05}
    state: dict[str, StateSpec] = {"trustee_factors_": Array("float32", ("n_users", "factors"))}

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.02, reg_user: float = 0.001,
                 reg_item: float = 0.001, reg_social: float = 0.01, reg_trustee: float = 0.01,
                 init_range: float = 1.0, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.reg_social = reg_social
        self.reg_trustee = reg_trustee
        self.init_range = init_range
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import pair_gradient

        r, targets, trust, rng = self._prepare(train)
        out_deg = np.diff(trust.indptr).astype(np.float64)
        in_deg = np.bincount(trust.indices, minlength=train.n_users).astype(np.float64)
        rows = np.repeat(np.arange(train.n_users), np.diff(trust.indptr))
        cols = trust.indices
        weight = np.sqrt(in_deg[cols] / np.maximum(out_deg[rows] + in_deg[cols], 1.0))
        c = (trust.data * weight).astype(np.float32)
        u = self._init(rng, train.n_users)
        v = self._init(rng, train.n_items)
        z = self._init(rng, train.n_users)
        k = u.shape[1]
        lr = np.float32(self.learning_rate)
        parts_v = self._parts(train.n_items, k)
        parts_z = self._parts(train.n_users, k)
        zero = np.float32(0.0)
        bar = EpochBar(self, int(self.epochs))
        loss = 0.0
        for epoch in range(int(self.epochs)):
            gu = np.zeros_like(u)
            err = pair_gradient(r.indptr, r.indices, targets, u, v, True, np.float32(1.0), zero, zero, gu, parts_v)
            gv = parts_v.sum(axis=0)
            serr = pair_gradient(trust.indptr, trust.indices, c, u, z, True, np.float32(self.reg_social), zero, zero,
                                 gu, parts_z)
            gz = parts_z.sum(axis=0)
            gu += np.float32(self.reg_user) * u
            gv += np.float32(self.reg_item) * v
            gz += np.float32(self.reg_trustee) * z
            u -= lr * gu
            v -= lr * gv
            z -= lr * gz
            loss = 0.5 * (err + self.reg_social * serr + self.reg_user * sq(u)
                          + self.reg_item * sq(v) + self.reg_trustee * sq(z))
            bar.update(loss)
            self._check_finite(epoch, u, v, z)
        bar.close()
        self.loss_ = float(loss)
        self.user_factors_ = np.ascontiguousarray(u, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(v, dtype=np.float32)
        self.trustee_factors_ = np.ascontiguousarray(z, dtype=np.float32)

    def _trust_vectors(self, rows: sp.csr_array) -> np.ndarray:
        from ._base import fit_links, row_normalised

        start = np.asarray(row_normalised(rows) @ self.user_factors_, dtype=np.float32)
        return fit_links(rows, start, self.trustee_factors_, float(self.reg_user), float(self.learning_rate))
