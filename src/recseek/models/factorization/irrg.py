"""IRRG: matrix factorisation regularised by implicit item relationships."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, RatingPredictor, Sparse, StateSpec
from ..registry import register

_SQRT2 = np.sqrt(2.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@register
class IRRG(RatingPredictor):
    """Implicit item Relationship Regularised matrix factorisation.

    Ratings, scaled to [0, 1], are modelled as ``sigmoid(p_u . q_i)``. Association rules
    mined from the rating matrix pull related item factors together: for item-to-item
    rules ``k => j`` (confidence ``c/(c + reliability) * c / n_k`` with ``c`` the
    co-raters) the penalty ``alpha s ||q_j - q_k||^2``; for group-to-item rules
    ``{k, g} => j`` (among the ``neighbors`` strongest item rules of ``j``) the penalty
    ``alpha s ||q_j - (q_k + q_g) / sqrt 2||^2``. Each item keeps at most ``neighbors``
    group rules, topped up with its strongest item rules. Training is full-batch gradient
    descent with a bold-driver step size.

    Zhao, Guo, Zhang, Lu, Zhao. Exploiting implicit item relationships for recommender
    systems. UMAP 2015.
    """

    name = "IRRG"
    family = "factorization"
    paper = "Zhao, Guo, Zhang, Lu, Zhao. Exploiting implicit item relationships for recommender systems. UMAP 2015"
    rules = {"reliability": Float(lo=0.0), "init_range": Float(lo=0.0), "neighbors": Int(lo=1)}
    test_params = {"factors": 8, "epochs": 100, "learning_rate": 0.05}
    state: ClassVar[dict[str, StateSpec]] = {
        "item_rules_": Sparse(("n_items", "n_items")),
        "group_rules_": Array("float32", ("n_group_rules", 4)),
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
    }

    def __init__(
        self,
        factors: int = 10,
        epochs: int = 200,
        learning_rate: float = 0.001,
        reg: float = 0.001,
        alpha: float = 0.01,
        neighbors: int = 50,
        reliability: float = 50.0,
        init_range: float = 0.8,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.alpha = alpha
        self.neighbors = neighbors
        self.reliability = reliability
        self.init_range = init_range
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------------ rules
    def _mine_rules(self, train: Interactions) -> tuple[sp.csr_array, np.ndarray]:
        from ..neighborhood._similarity import prune_rows
        from ._irrg import group_rules

        b = sp.csr_array(train.matrix, dtype=np.float64, copy=True)
        b.data = np.ones_like(b.data)
        b.sort_indices()
        bt = sp.csr_array(b.T)
        bt.sort_indices()
        co = sp.csr_array(bt @ b)
        co.setdiag(0)
        co.eliminate_zeros()
        co.sort_indices()
        n_k = np.diff(bt.indptr).astype(np.float64)
        rows = np.repeat(np.arange(co.shape[0]), np.diff(co.indptr))
        c = co.data
        conf = sp.csr_array((c / (c + self.reliability) * c / n_k[rows], co.indices, co.indptr), shape=co.shape)
        # neighbours of target j: the strongest rules k => j
        by_target = prune_rows(sp.csr_array(conf.T), self.neighbors)
        gk, gg, gs, glens = group_rules(
            by_target.indptr.astype(np.int64), by_target.indices.astype(np.int32),
            bt.indptr.astype(np.int64), bt.indices.astype(np.int32),
            b.indptr.astype(np.int64), b.indices.astype(np.int32),
            co.indptr.astype(np.int64), co.indices.astype(np.int32), co.data.astype(np.float64),
            float(self.reliability), int(self.neighbors),
        )
        # top up each target's group rules with its strongest item rules
        need = self.neighbors - glens
        lens = np.diff(by_target.indptr)
        row_of = np.repeat(np.arange(by_target.shape[0]), lens)
        # rank of each rule within its target, strongest first (rows are sorted by column)
        order = np.lexsort((-by_target.data, row_of))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order)) - by_target.indptr[:-1][row_of[order]]
        keep = rank < need[row_of]
        item_rules = sp.csr_array(
            (by_target.data[keep], by_target.indices[keep],
             np.concatenate([[0], np.cumsum(np.bincount(row_of[keep], minlength=by_target.shape[0]))])),
            shape=by_target.shape,
        )
        mask = gk >= 0
        targets = np.repeat(np.arange(gk.shape[0]), mask.sum(axis=1))
        groups = np.stack([targets, gk[mask], gg[mask]], axis=1).astype(np.int64)
        return item_rules, np.concatenate([groups, gs[mask][:, None]], axis=1)

    # ------------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        item_rules, groups = self._mine_rules(train)
        self.item_rules_ = item_rules.astype(np.float32)
        self.group_rules_ = groups.astype(np.float32)
        m = sp.csr_array(train.matrix)
        m.sort_indices()
        u = train.user_index()
        lo, hi = self.rating_min_, self.rating_max_
        target = (m.data - lo) / max(hi - lo, 1e-12)
        rng = np.random.default_rng(self.seed)
        p = rng.random((train.n_users, self.factors)) * self.init_range
        q = rng.random((train.n_items, self.factors)) * self.init_range
        s_rows = item_rules.astype(np.float64)
        s_cols = sp.csr_array(s_rows.T)
        row_sum = np.asarray(s_rows.sum(axis=1)).ravel()
        col_sum = np.asarray(s_cols.sum(axis=1)).ravel()
        # incidence of group rules: column r is e_j - (e_k + e_g)/sqrt2, so A^T q = q_j - (q_k + q_g)/sqrt2
        n_g = groups.shape[0]
        cols = np.tile(np.arange(n_g), 3)
        rows_ = np.concatenate([groups[:, 0], groups[:, 1], groups[:, 2]]).astype(np.int64)
        vals = np.concatenate([np.ones(n_g), np.full(2 * n_g, -1.0 / _SQRT2)])
        inc = sp.csr_array((vals, (rows_, cols)), shape=(train.n_items, n_g))
        inc_t = sp.csr_array(inc.T)
        gw = groups[:, 3].astype(np.float64)
        lr = self.learning_rate
        last = np.inf
        for epoch in self._progress(range(self.epochs), total=self.epochs):
            loss, gp, gq = self._gradients(p, q, u, m, target, s_rows, s_cols, row_sum, col_sum, inc, inc_t, gw)
            self._check_finite(epoch + 1, gp, gq)
            if loss > last:
                lr *= 0.5
            elif epoch:
                lr *= 1.05
            last = loss
            p -= lr * gp
            q -= lr * gq
        self._check_finite(self.epochs, p, q)
        self.user_factors_ = p.astype(np.float32)
        self.item_factors_ = q.astype(np.float32)

    def _gradients(self, p, q, u, m, target, s_rows, s_cols, row_sum, col_sum, inc, inc_t, gw):
        x = np.einsum("ij,ij->i", p[u], q[m.indices])
        pred = _sigmoid(x)
        err = pred - target
        e = sp.csr_array((err * pred * (1.0 - pred), m.indices, m.indptr), shape=m.shape)
        gp = e @ q + self.reg * p
        gq = e.T @ p + self.reg * q
        loss = float((err**2).sum() + self.reg * ((p**2).sum() + (q**2).sum()))
        a = self.alpha
        # item rules k => j (rows j of s_rows): alpha s ||q_j - q_k||^2 / 2
        sq = s_rows @ q
        gq += a * (row_sum[:, None] * q - sq) + a * (col_sum[:, None] * q - s_cols @ q)
        norms = (q**2).sum(axis=1)
        loss += float(a * ((row_sum + col_sum) @ norms - 2.0 * (q * sq).sum()))
        # group rules {k, g} => j: alpha s ||q_j - (q_k + q_g)/sqrt2||^2 / 2
        diff = inc_t @ q
        w = (a * gw)[:, None] * diff
        gq += inc @ w
        loss += float((w * diff).sum())
        return 0.5 * loss, gp, gq

    # ------------------------------------------------------------------ scoring
    def _to_rating(self, x: np.ndarray) -> np.ndarray:
        return (self.rating_min_ + _sigmoid(x) * (self.rating_max_ - self.rating_min_)).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        q = self.item_factors_ if items is None else self.item_factors_[items]
        return self._to_rating(self.user_factors_[users].astype(np.float64) @ q.T.astype(np.float64))

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        x = np.einsum("ij,ij->i", self.user_factors_[users].astype(np.float64), self.item_factors_[items].astype(np.float64))
        return self._to_rating(x)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        """New users' factors by gradient descent on their ratings with the items fixed."""
        rows = sp.csr_array(rows)
        n = rows.shape[0]
        owner = np.repeat(np.arange(n), np.diff(rows.indptr))
        items = rows.indices.astype(np.int64)
        target = (rows.data - self.rating_min_) / max(self.rating_max_ - self.rating_min_, 1e-12)
        q = self.item_factors_.astype(np.float64)
        p = np.full((n, q.shape[1]), self.init_range / 2)
        lr = 0.05
        for _ in range(200):
            pred = _sigmoid(np.einsum("ij,ij->i", p[owner], q[items]))
            csgd = (pred - target) * pred * (1 - pred)
            grad = sp.csr_array((csgd, (owner, items)), shape=(n, q.shape[0])) @ q + self.reg * p
            p -= lr * grad
        return self._to_rating(p @ q.T)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        return self.user_factors_
