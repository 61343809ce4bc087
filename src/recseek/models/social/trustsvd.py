"""TrustSVD: SVD++ with the explicit and implicit influence of trust (Guo, Zhang & Yorke-Smith, 2015)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float
from ..base import Array, Scalar, StateSpec
from ..factorization._base import LatentRatingModel
from ..registry import register
from ._base import EpochBar, TrustColdStart, trust_matrix


@register
class TrustSVD(TrustColdStart, LatentRatingModel):
    """TrustSVD: SVD++ whose user vector also sums the factors of the users they trust.

    Prediction (Guo, Zhang & Yorke-Smith 2015, eq. 4)::

        r(u, j) = mu + b_u + b_j + q_j . (p_u + |I_u|^-1/2 sum_(i in I_u) y_i
                                              + |T_u|^-1/2 sum_(v in T_u) w_v)

    with ``I_u`` the items ``u`` rated and ``T_u`` the users ``u`` trusts. Objective (eq. 5)::

        1/2 sum_(u,j) (r^ - r)^2 + reg_social/2 sum_(u,v) (w_v . p_u - t_uv)^2
        + reg/2 sum_u |I_u|^-1/2 b_u^2 + reg/2 sum_j |U_j|^-1/2 (b_j^2 + |q_j|^2 + |y_j|^2)
        + sum_u (reg/2 |I_u|^-1/2 + reg_social/2 |T_u|^-1/2) |p_u|^2
        + reg/2 sum_v |T+_v|^-1/2 |w_v|^2

    (``U_j``: users who rated ``j``; ``T+_v``: users who trust ``v``), trained by SGD: the
    users in random order, each user's ratings in random order updating ``b_u, b_j, p_u,
    q_j`` (eq. 6); the gradient of the ``y_i`` and ``w_v`` of the user is gathered over
    the user's ratings and applied once after them; then each of the user's trust links
    takes one step of the trust term. As published, the regularisation is applied to the
    parameters a rating or link touches, with the weights above.

    Parameters
    ----------
    factors, epochs, learning_rate : int, int, float
        Latent dimensions, SGD passes, step size (JStarCraft ``recommender.factor.number``,
        ``iterator.maximum``, ``iterator.learnrate``).
    reg : float
        ``lambda`` of the user, item and bias penalties (JStarCraft's user, item and bias
        regularisation, 1.2 each in its settings).
    reg_social : float
        ``lambda_t``: weight of the trust term (``recommender.social.regularization``).
    init_std : float
        Standard deviation of the normal initial factors.
    seed : int or None
        Random seed (initialisation and orders).
    verbose : bool
        Progress bar with the loss.

    Learned state: ``user_factors_`` holds the whole user vector (the bracket above,
    n_users x factors), ``item_factors_`` the ``q_j``, ``trustee_factors_`` the ``w_v``
    (n_users x factors), ``implicit_factors_`` the ``y_i`` (n_items x factors), with the
    biases. Social cold start (:meth:`recommend_for_trust`): ``p`` solves the trust term
    for the new user's links, ``min sum_v (w_v . p - t_v)^2 + |T|^1/2 |p|^2`` (ridge),
    and the vector is ``p + |T|^-1/2 sum_v w_v``; ``b_u = 0``. New users with ratings fold
    in through :meth:`recommend_new` (ridge regression on the item factors).
    """

    name = "TrustSVD"
    family: ClassVar[str] = "social"
    requires: ClassVar[tuple[str, ...]] = ("trust",)
    paper = ("Guo, Zhang & Yorke-Smith. TrustSVD: Collaborative Filtering with Both the Explicit and Implicit "
             "Influence of User Trust and of Item Ratings. AAAI 2015")
    rules = {"reg_social": Float(lo=0.0), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 30, "learning_rate": 0.01, "reg": 0.1}
    state: ClassVar[dict[str, StateSpec]] = {
        "trustee_factors_": Array("float32", ("n_users", "factors")),
        "implicit_factors_": Array("float32", ("n_items", "factors")),
        "loss_": Scalar(float, finite=False),
    }

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.005, reg: float = 1.2,
                 reg_social: float = 0.9, init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_social = reg_social
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ..factorization.mf import sgd_chunks
        from ._kernels import trustsvd_epoch

        trust = trust_matrix(self.display_name, train)
        r = sp.csr_array(train.matrix, dtype=np.float32)
        r.sort_indices()
        n_u, n_i, k = train.n_users, train.n_items, int(self.factors)
        rng = np.random.default_rng(self.seed)
        std = float(self.init_std)
        p = (std * rng.standard_normal((n_u, k))).astype(np.float32)
        q = (std * rng.standard_normal((n_i, k))).astype(np.float32)
        y = (std * rng.standard_normal((n_i, k))).astype(np.float32)
        w = (std * rng.standard_normal((n_u, k))).astype(np.float32)
        bu = np.zeros(n_u, np.float32)
        bi = np.zeros(n_i, np.float32)
        raters = np.bincount(r.indices, minlength=n_i)
        item_w = np.where(raters > 0, 1.0 / np.sqrt(np.maximum(raters, 1)), 1.0).astype(np.float32)
        trusters = np.bincount(trust.indices, minlength=n_u)
        trustee_w = np.where(trusters > 0, 1.0 / np.sqrt(np.maximum(trusters, 1)), 1.0).astype(np.float32)
        mu = np.float32(self.global_mean_)
        indptr = r.indptr.astype(np.int64)
        indices = r.indices.astype(np.int32)
        counts = np.diff(indptr)
        active = np.flatnonzero((counts > 0) | (np.diff(trust.indptr) > 0)).astype(np.int64)
        chunks = sgd_chunks(r.nnz)
        lr, reg, lam = np.float32(self.learning_rate), np.float32(self.reg), np.float32(self.reg_social)
        bar = EpochBar(self, int(self.epochs))
        loss = 0.0
        for epoch in range(int(self.epochs)):
            order = rng.permutation(active)
            # a random order of each user's ratings: a shuffled key sorted within each user's slice
            key = np.repeat(np.arange(n_u), counts) + rng.random(r.nnz)
            inner = np.argsort(key, kind="stable").astype(np.int64)
            loss = trustsvd_epoch(order, indptr, indices, r.data, inner, trust.indptr, trust.indices, trust.data,
                                  p, q, y, w, bu, bi, mu, lr, reg, lam, item_w, trustee_w, chunks)
            loss = 0.5 * float(loss)
            bar.update(loss / max(r.nnz, 1))
            self._check_finite(epoch, p, q, y, w, bu, bi)
        bar.close()
        self.loss_ = loss / max(r.nnz, 1)
        # the whole user vector p_u + |I_u|^-1/2 sum y + |T_u|^-1/2 sum w
        seen = sp.csr_array((np.ones(r.nnz, np.float32), indices, indptr), shape=r.shape)
        ny = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0).astype(np.float32)
        tc = np.diff(trust.indptr)
        nw = np.where(tc > 0, 1.0 / np.sqrt(np.maximum(tc, 1)), 0.0).astype(np.float32)
        tpat = sp.csr_array((np.ones(trust.nnz, np.float32), trust.indices, trust.indptr), shape=trust.shape)
        full = p + ny[:, None] * (seen @ y) + nw[:, None] * (tpat @ w)
        linked = (tc > 0) | (trusters > 0)
        self.user_rated_ = self.user_rated_ | linked
        cold_items = raters == 0
        q[cold_items] = 0.0
        bi[cold_items] = 0.0
        self.user_factors_ = np.ascontiguousarray(full, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(q, dtype=np.float32)
        self.user_bias_ = bu
        self.item_bias_ = bi
        self.global_bias_ = float(mu)
        self.trustee_factors_ = np.ascontiguousarray(w, dtype=np.float32)
        self.implicit_factors_ = np.ascontiguousarray(y, dtype=np.float32)

    def _trust_vectors(self, rows: sp.csr_array) -> np.ndarray:
        w = self.trustee_factors_.astype(np.float64)
        n, k = rows.shape[0], w.shape[1]
        counts = np.diff(rows.indptr)
        owner = np.repeat(np.arange(n), counts)
        wv = w[rows.indices]
        a = np.zeros((n, k, k))
        np.add.at(a, owner, wv[:, :, None] * wv[:, None, :])
        a += np.sqrt(np.maximum(counts, 1))[:, None, None] * np.eye(k)[None]
        rhs = np.zeros((n, k))
        np.add.at(rhs, owner, wv * rows.data.astype(np.float64)[:, None])
        p = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
        sums = np.zeros((n, k))
        np.add.at(sums, owner, wv)
        out = p + sums / np.sqrt(np.maximum(counts, 1))[:, None]
        out[counts == 0] = 0.0
        return out.astype(np.float32)

    def _score_vectors(self, vectors: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        q = self.item_factors_ if items is None else self.item_factors_[items]
        b = self.item_bias_ if items is None else self.item_bias_[items]
        return (vectors @ q.T + b[None, :] + np.float32(self.global_bias_)).astype(np.float32)
