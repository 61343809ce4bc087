"""SLIM: sparse linear item-item model learned by elastic-net regression."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Bool, Float, Int
from ..base import Recommender, Sparse, StateSpec
from ..registry import register


@register
class SLIM(Recommender):
    """Sparse LInear Method for top-N recommendation.

    For every item ``j`` a non-negative weight vector ``w_j`` minimises
    ``1/2 ||x_j - X w_j||^2 + reg_l1 |w_j|_1 + reg/2 |w_j|^2`` with ``w_jj = 0``, by
    cyclic coordinate descent (at most ``epochs`` sweeps, stopping when the largest change
    is below ``tol`` times the largest weight). As in fsSLIM, each regression only uses
    the ``neighbors`` items most cosine-similar to ``j`` as features; the items are solved
    in parallel. Scores are ``x_u W``.

    Ning, Karypis. SLIM: sparse linear methods for top-N recommender systems. ICDM 2011.
    """

    name = "SLIM"
    family = "linear"
    paper = "Ning, Karypis. SLIM: sparse linear methods for top-N recommender systems. ICDM 2011"
    rules = {"reg_l1": Float(lo=0.0), "reg": Float(lo=0.0), "tol": Float(lo=0.0),
             "binary": Bool(), "positive": Bool(), "neighbors": Int(lo=1)}
    test_params = {"neighbors": 10, "epochs": 10}
    state: ClassVar[dict[str, StateSpec]] = {
        "weights_": Sparse(("n_items", "n_items")),
        "user_items_": Sparse(("n_users", "n_items")),
    }

    def __init__(
        self,
        neighbors: int = 50,
        reg_l1: float = 1.0,
        reg: float = 5.0,
        epochs: int = 40,
        tol: float = 1e-4,
        binary: bool = True,
        positive: bool = True,
    ) -> None:
        self.neighbors = neighbors
        self.reg_l1 = reg_l1
        self.reg = reg
        self.epochs = epochs
        self.tol = tol
        self.binary = binary
        self.positive = positive

    def _rows(self, m: sp.csr_array) -> sp.csr_array:
        m = sp.csr_array(m, dtype=np.float32, copy=True)
        if self.binary:
            m.data = np.ones_like(m.data)
        m.sort_indices()
        return m

    def _fit(self, train: Interactions) -> None:
        from ..neighborhood._similarity import pairwise_topk
        from ._kernels import slim_cd

        x = self._rows(train.matrix)
        xt = sp.csr_array(x.T)
        xt.sort_indices()
        cand = pairwise_topk(xt, "cosine", self.neighbors, 0.0)
        k = max(1, int(np.diff(cand.indptr).max(initial=0)))
        padded = np.full((train.n_items, k), -1, dtype=np.int32)
        lens = np.diff(cand.indptr)
        pos = np.arange(cand.nnz) - np.repeat(cand.indptr[:-1], lens)
        padded[np.repeat(np.arange(train.n_items), lens), pos] = cand.indices
        gram = sp.csr_array(xt @ x)
        gram.sort_indices()
        w, _ = slim_cd(gram.indptr.astype(np.int64), gram.indices.astype(np.int32), gram.data.astype(np.float64),
                       padded, float(self.reg_l1), float(self.reg), int(self.epochs), float(self.tol),
                       bool(self.positive))
        self._check_finite(self.epochs, w)
        mask = padded >= 0
        rows = np.repeat(np.arange(train.n_items), mask.sum(axis=1))
        coef = sp.csr_array((w[mask], (padded[mask], rows)), shape=(train.n_items, train.n_items), dtype=np.float32)
        coef.eliminate_zeros()
        coef.sort_indices()
        self.weights_ = coef
        self.user_items_ = x

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w = self.weights_ if items is None else self.weights_[:, items]
        return np.asarray((self.user_items_[users] @ w).toarray(), dtype=np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return np.asarray((self._rows(rows) @ self.weights_).toarray(), dtype=np.float32)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.weights_[items].toarray(), dtype=np.float32)
