"""TrustMF: social collaborative filtering by trust (Yang, Lei, Liu & Li, 2013)."""

from __future__ import annotations

import numpy as np

from ...data._interactions import Interactions
from .._params import Choice, Float
from ..base import Array, StateSpec
from ..registry import register
from ._base import EpochBar, SocialRatingModel


@register
class TrustMF(SocialRatingModel):
    """TrustMF: users as trusters and as trustees, each view factorising ratings and trust.

    Truster model (Yang et al. 2013, eq. 6): ``r~_uj ~ g(b_u . v_j)``, ``t_uk ~ g(b_u . w_k)``;
    trustee model (eq. 9): ``r~_uj ~ g(w'_u . v'_j)``, ``t_ku ~ g(b'_k . w'_u)``. Each
    minimises ``1/2 sum (g(.) - r~)^2 + reg_social/2 sum (g(.) - t)^2`` plus the paper's
    frequency-weighted L2 penalty ``reg/2 sum_x n_x |x|^2`` (``n_x``: the number of
    ratings and trust links the vector ``x`` takes part in), by full gradient descent.
    ``r~ = (r - r_min) / (r_max - r_min)``; trust values are scaled to [0, 1].
    ``mode="both"`` trains the two models and predicts with their synthesis (eq. 12)
    ``g((b_u + w'_u) . (v_j + v'_j) / 4)``; ``"truster"`` and ``"trustee"`` use one view.

    Parameters
    ----------
    factors, epochs, learning_rate : int, int, float
        Latent dimensions, gradient steps per view, step size (JStarCraft
        ``recommender.factor.number``, ``iterator.maximum``, ``iterator.learnrate``).
    reg : float
        ``lambda``: weight of the frequency-weighted L2 penalty (JStarCraft's user and
        item regularisation).
    reg_social : float
        ``lambda_T``: weight of the trust loss (``recommender.social.regularization``).
    mode : {"both", "truster", "trustee"}
        Which view predicts (``recommender.social.model`` T, Tr, Te).
    init_range : float
        Initial factors are drawn uniformly from ``[0, init_range)`` (JStarCraft's start).
    seed : int or None
        Random seed of the initialisation.
    verbose : bool
        Progress bar with the loss.

    Learned state: ``user_factors_`` ``(b + w') / 2`` and ``item_factors_`` ``(v + v') / 2``
    (n_users / n_items, factors) in mode "both" (one view's vectors otherwise), and
    ``trustee_factors_`` (the truster view's ``w``, n_users x factors). Social cold start
    (:meth:`recommend_for_trust`): the new user's truster vector ``b`` fits their trust
    links ``g(b . w_k) ~ t_k`` (gradient steps from the trusted users' mean vector); the
    trustee-view half, which no link informs, is the trusted users' mean user vector.
    """

    name = "TrustMF"
    paper = ("Yang, Lei, Liu & Li. Social Collaborative Filtering by Trust. IJCAI 2013")
    rules = {"reg_social": Float(lo=0.0), "mode": Choice(("both", "truster", "trustee")),
             "init_range": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 150, "learning_rate": 0.05}
    state: dict[str, StateSpec] = {"trustee_factors_": Array("float32", ("n_users", "factors"))}

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.02, reg: float = 0.001,
                 reg_social: float = 1.0, mode: str = "both", init_range: float = 1.0, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_social = reg_social
        self.mode = mode
        self.init_range = init_range
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import pair_gradient

        r, targets, trust, rng = self._prepare(train)
        tt = trust.T.tocsr()
        tt.sort_indices()
        n_u, n_i = train.n_users, train.n_items
        views = ("truster", "trustee") if self.mode == "both" else (self.mode,)
        # truster view: b (rates, trusts), w (is trusted), v; trustee view: w' (rates, is trusted), b', v'
        b, w, v = self._init(rng, n_u), self._init(rng, n_u), self._init(rng, n_i)
        b2, w2, v2 = self._init(rng, n_u), self._init(rng, n_u), self._init(rng, n_i)
        k = b.shape[1]
        lr = np.float32(self.learning_rate)
        reg = np.float32(self.reg)
        lam = np.float32(self.reg_social)
        one = np.float32(1.0)
        parts_i = self._parts(n_i, k)
        parts_u = self._parts(n_u, k)
        bar = EpochBar(self, int(self.epochs))
        loss = 0.0
        for epoch in range(int(self.epochs)):
            loss = 0.0
            if "truster" in views:
                gb = np.zeros_like(b)
                loss += pair_gradient(r.indptr, r.indices, targets, b, v, True, one, reg, reg, gb, parts_i)
                gv = parts_i.sum(axis=0)
                loss += lam * pair_gradient(trust.indptr, trust.indices, trust.data, b, w, True, lam, reg, reg, gb,
                                            parts_u)
                gw = parts_u.sum(axis=0)
                b -= lr * gb
                v -= lr * gv
                w -= lr * gw
            if "trustee" in views:
                gw2 = np.zeros_like(w2)
                loss += pair_gradient(r.indptr, r.indices, targets, w2, v2, True, one, reg, reg, gw2, parts_i)
                gv2 = parts_i.sum(axis=0)
                # trust links read column-wise: trustee w'_u against the truster vectors b'_k
                loss += lam * pair_gradient(tt.indptr, tt.indices, tt.data, w2, b2, True, lam, reg, reg, gw2,
                                            parts_u)
                gb2 = parts_u.sum(axis=0)
                w2 -= lr * gw2
                v2 -= lr * gv2
                b2 -= lr * gb2
            loss *= 0.5
            bar.update(loss)
            self._check_finite(epoch, b, w, v, b2, w2, v2)
        bar.close()
        self.loss_ = float(loss)
        if self.mode == "both":
            user, item = 0.5 * (b + w2), 0.5 * (v + v2)
        elif self.mode == "truster":
            user, item = b, v
        else:
            user, item = w2, v2
        self.user_factors_ = np.ascontiguousarray(user, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item, dtype=np.float32)
        self.trustee_factors_ = np.ascontiguousarray(w if "truster" in views else b2, dtype=np.float32)

    def _trust_vectors(self, rows) -> np.ndarray:
        from ._base import fit_links, row_normalised

        mean = np.asarray(row_normalised(rows) @ self.user_factors_, dtype=np.float32)
        if self.mode == "trustee":
            return mean
        b = fit_links(rows, mean, self.trustee_factors_, float(self.reg), float(self.learning_rate))
        return b if self.mode == "truster" else (0.5 * (b + mean)).astype(np.float32)
