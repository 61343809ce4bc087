"""FISM: factored item similarity models (RMSE and AUC losses)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, Sparse, StateSpec
from ..registry import register


class _FISM(Recommender):
    family = "factorization"
    paper = "Kabbur, Ning, Karypis. FISM: factored item similarity models for top-N recommender systems. KDD 2013"
    rules = {"negatives": Int(lo=1), "reg_bias": Float(lo=0.0), "alpha": Float(lo=0.0, hi=1.0), "init_std": Float(lo=0.0)}
    pairwise = False
    state: ClassVar[dict[str, StateSpec]] = {
        "context_factors_": Array("float32", ("n_items", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "item_bias_": Array("float32", ("n_items",)),
        "user_items_": Sparse(("n_users", "n_items")),
    }

    def __init__(
        self,
        factors: int = 10,
        epochs: int = 20,
        learning_rate: float = 0.01,
        reg: float = 0.001,
        reg_bias: float = 0.001,
        alpha: float = 0.5,
        negatives: int = 3,
        init_std: float = 0.01,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.alpha = alpha
        self.negatives = negatives
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._fism import fism_epoch

        rng = np.random.default_rng(self.seed)
        n_users, n_items = train.shape
        p = rng.normal(0.0, self.init_std, (n_items, self.factors))
        q = rng.normal(0.0, self.init_std, (n_items, self.factors))
        bi = np.zeros(n_items)
        bu = np.zeros(n_users)
        m = sp.csr_array(train.matrix)
        m.sort_indices()
        indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int32)
        base_seed = int(self.seed or 0) * 1_000_003
        for epoch in self._progress(range(self.epochs), total=self.epochs):
            fism_epoch(indptr, indices, p, q, bi, bu, float(self.learning_rate), float(self.reg),
                       float(self.reg_bias), float(self.alpha), int(self.negatives), self.pairwise,
                       base_seed + epoch * (n_users + 1))
            self._check_finite(epoch + 1, p, q, bi, bu)
        self.context_factors_ = p.astype(np.float32)
        self.item_factors_ = q.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)
        self.user_items_ = sp.csr_array(
            (np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape)

    def _scores(self, rows: sp.csr_array, items: np.ndarray | None) -> np.ndarray:
        cols = np.arange(self.n_items_) if items is None else items
        n = np.diff(rows.indptr).astype(np.float64)
        total = np.asarray(rows @ self.context_factors_, dtype=np.float64)
        scale = np.where(n > 0, np.maximum(n, 1) ** -self.alpha, 0.0)
        q = self.item_factors_[cols].astype(np.float64)
        out = self.item_bias_[cols][None, :] + (total * scale[:, None]) @ q.T
        # items in the user's own history leave themselves out of the context
        r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        own = rows.indices
        pos = np.full(self.n_items_, -1)
        pos[cols] = np.arange(len(cols))
        keep = pos[own] >= 0
        r, own = r[keep], own[keep]
        n_r = n[r]
        sc = np.where(n_r > 1, np.maximum(n_r - 1, 1) ** -self.alpha, 0.0)
        ctx = (total[r] - self.context_factors_[own]) * sc[:, None]
        out[r, pos[own]] = self.item_bias_[own] + np.einsum("ij,ij->i", ctx, self.item_factors_[own])
        return out.astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._scores(self.user_items_[users], items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        b = sp.csr_array(rows, dtype=np.float32, copy=True)
        b.data = np.ones_like(b.data)
        b.sort_indices()
        return self._scores(b, None)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_


@register
class FISMRMSE(_FISM):
    """FISM with squared loss (FISMrmse).

    ``r_ui = b_u + b_i + (n_u - 1)^-alpha sum_{j in I(u) \\ i} p_j . q_i`` fitted by SGD to
    1 on observed pairs and 0 on ``negatives`` sampled unobserved items per observed pair.

    Kabbur, Ning, Karypis. FISM: factored item similarity models for top-N recommender
    systems. KDD 2013.
    """

    name = "FISMRMSE"
    test_params = {"factors": 8, "epochs": 20, "learning_rate": 0.05}
    pairwise = False


@register
class FISMAUC(_FISM):
    """FISM with a pairwise ranking loss (FISMauc).

    Same scoring rule as FISMRMSE (no user bias); SGD on ``(1 - (r_ui - r_uj))^2`` for
    each observed ``i`` against ``negatives`` sampled unobserved ``j``.

    Kabbur, Ning, Karypis. FISM: factored item similarity models for top-N recommender
    systems. KDD 2013.
    """

    name = "FISMAUC"
    test_params = {"factors": 8, "epochs": 10}
    pairwise = True
