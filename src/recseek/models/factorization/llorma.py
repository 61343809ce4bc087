"""LLORMA: local low-rank matrix approximation for rating prediction."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, RatingPredictor, Scalar, StateSpec
from ..registry import register
from ._base import init_normal, training_arrays


@register
class LLORMA(RatingPredictor):
    """Local low-rank matrix approximation (LLORMA), rating prediction.

    A global matrix factorisation (no biases, SGD) gives every user and item an embedding.
    ``anchors`` anchor points (a random user with ratings, and a random item that user
    rated) are drawn; each anchor owns a local rank-``factors`` model trained by SGD on all
    ratings, each rating weighted by ``K(u, u_t) * K(i, i_t)``, the Epanechnikov kernels
    (bandwidth ``width``) of the angular distance ``2/pi * arccos(cos)`` between global
    embeddings. A rating is predicted as the kernel-weighted average of the local
    predictions ``sum_t K_t p_t(u).q_t(i) / sum_t K_t`` (the global mean where no anchor
    reaches the pair). Local models train in parallel over anchors.
    Lee, Kim, Lebanon & Singer (2013).

    Parameters
    ----------
    factors : int
        Rank of each local model.
    epochs : int
        SGD passes over the ratings for the local models.
    learning_rate : float
        SGD step of the local models.
    reg : float
        L2 weight of the local factors.
    anchors : int
        Number of anchor points (local models).
    width : float
        Bandwidth of the Epanechnikov kernel on the angular distance (in [0, 2]).
    global_factors : int
        Rank of the global factorisation that defines the distances.
    global_epochs : int
        SGD passes of the global factorisation.
    global_learning_rate : float
        SGD step of the global factorisation.
    global_reg : float
        L2 weight of the global factors.
    init_std : float
        Standard deviation of the normal initialisation of all factors.
    seed : int or None
        Random seed (initialisation, anchors, shuffling).
    verbose : bool
        Show a progress bar.

    Learned state: ``global_user_factors_`` (n_users, global_factors),
    ``global_item_factors_`` (n_items, global_factors), ``anchor_users_`` and
    ``anchor_items_`` (n_anchors,), kernel weights ``user_weights_`` (n_anchors, n_users)
    and ``item_weights_`` (n_anchors, n_items), local factors ``user_factors_``
    (n_anchors, n_users, factors) and ``item_factors_`` (n_anchors, n_items, factors).
    """

    name = "LLORMA"
    family = "factorization"
    paper = "Lee, Kim, Lebanon & Singer. Local Low-Rank Matrix Approximation. ICML 2013"
    rules = {
        "anchors": Int(lo=1),
        "width": Float(lo=0.0, lo_open=True),
        "global_factors": Int(lo=1),
        "global_epochs": Int(lo=1),
        "global_learning_rate": Float(lo=0.0, lo_open=True),
        "global_reg": Float(lo=0.0),
        "init_std": Float(lo=0.0),
    }
    test_params = {"factors": 4, "epochs": 30, "learning_rate": 0.05, "anchors": 8, "global_factors": 8, "global_epochs": 100,
                   "global_learning_rate": 0.05, "init_std": 0.1}
    state: ClassVar[dict[str, StateSpec]] = {
        "loss_": Scalar(float, finite=False),
        "global_user_factors_": Array("float32", ("n_users", "global_factors")),
        "global_item_factors_": Array("float32", ("n_items", "global_factors")),
        "anchor_users_": Array("int64", ("n_anchors",), bounds="n_users"),
        "anchor_items_": Array("int64", ("n_anchors",), bounds="n_items"),
        "user_weights_": Array("float32", ("n_anchors", "n_users")),
        "item_weights_": Array("float32", ("n_anchors", "n_items")),
        "user_factors_": Array("float32", ("n_anchors", "n_users", "factors")),
        "item_factors_": Array("float32", ("n_anchors", "n_items", "factors")),
    }

    def __init__(self, factors: int = 6, epochs: int = 200, learning_rate: float = 0.01, reg: float = 0.01,
                 anchors: int = 55, width: float = 0.8, global_factors: int = 10, global_epochs: int = 200,
                 global_learning_rate: float = 0.0005, global_reg: float = 0.1, init_std: float = 0.01,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.anchors = anchors
        self.width = width
        self.global_factors = global_factors
        self.global_epochs = global_epochs
        self.global_learning_rate = global_learning_rate
        self.global_reg = global_reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        from ._llorma import kernel_weights, local_epoch
        from ._sgd import mf_epoch
        from .mf import sgd_chunks

        users, items, ratings = training_arrays(train)
        rng = np.random.default_rng(self.seed)
        n = len(ratings)

        # global factorisation: embeddings for the distances
        g = int(self.global_factors)
        gp = init_normal(rng, (self.n_users_, g), self.init_std)
        gq = init_normal(rng, (self.n_items_, g), self.init_std)
        zu = np.zeros(self.n_users_, np.float32)
        zi = np.zeros(self.n_items_, np.float32)
        glr = np.float32(self.global_learning_rate)
        greg = np.float32(self.global_reg)
        chunks = sgd_chunks(n)
        for epoch in self._progress(range(int(self.global_epochs)), total=int(self.global_epochs),
                                    desc="LLORMA global"):
            order = rng.permutation(n).astype(np.int64)
            loss = mf_epoch(users, items, ratings, order, gp, gq, zu, zi, np.float32(0.0), glr, greg, greg,
                            np.float32(0.0), np.float32(0.0), False, chunks)
            self._check_finite(epoch, np.asarray(loss))
        self._check_finite(int(self.global_epochs), gp, gq)
        # users / items without ratings keep no embedding: no anchor reaches them
        gp[~self.user_rated_] = 0.0
        gq[~self.item_rated_] = 0.0

        # anchor points: a random user with ratings, then a random item among theirs
        m = train.matrix
        rated_users = np.flatnonzero(self.user_rated_)
        t_count = int(self.anchors)
        au = rated_users[rng.integers(0, len(rated_users), t_count)]
        starts = m.indptr[au]
        lens = m.indptr[au + 1] - starts
        ai = m.indices[starts + (rng.random(t_count) * lens).astype(np.int64)].astype(np.int64)
        wu = kernel_weights(gp, gp[au], float(self.width))
        wi = kernel_weights(gq, gq[ai], float(self.width))

        # local models, trained together (parallel over anchors)
        k = int(self.factors)
        p = init_normal(rng, (t_count, self.n_users_, k), self.init_std)
        q = init_normal(rng, (t_count, self.n_items_, k), self.init_std)
        lr = np.float32(self.learning_rate)
        reg = np.float32(self.reg)
        self.loss_ = 0.0
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs), desc="LLORMA local"):
            order = rng.permutation(n).astype(np.int64)
            losses = local_epoch(users, items, ratings, order, wu, wi, p, q, lr, reg)
            self._check_finite(epoch, losses)
            self.loss_ = float(losses.mean()) / n
        self._check_finite(int(self.epochs), p, q)

        self.global_user_factors_ = np.ascontiguousarray(gp)
        self.global_item_factors_ = np.ascontiguousarray(gq)
        self.anchor_users_ = au.astype(np.int64)
        self.anchor_items_ = ai
        self.user_weights_ = np.ascontiguousarray(wu)
        self.item_weights_ = np.ascontiguousarray(wi)
        self.user_factors_ = p
        self.item_factors_ = q

    # ------------------------------------------------------------ scoring
    def _combine(self, wu: np.ndarray, p: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Weighted average of local predictions for users given by their weights (T, n) and
        local factors (T, n, k), over ``items`` (or all): two BLAS products."""
        wi = self.item_weights_ if items is None else self.item_weights_[:, items]
        q = self.item_factors_ if items is None else self.item_factors_[:, items]
        t_count, n_users, k = p.shape
        left = (wu[:, :, None] * p).transpose(1, 0, 2).reshape(n_users, t_count * k)
        right = (wi[:, :, None] * q).transpose(1, 0, 2).reshape(wi.shape[1], t_count * k)
        num = left @ right.T
        den = wu.T @ wi
        out = np.full(num.shape, np.float32(self.global_mean_), dtype=np.float32)
        np.divide(num, den, out=out, where=den > 0)
        return out

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._combine(self.user_weights_[:, users], self.user_factors_[:, users], items)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        from ._llorma import predict_pairs

        return predict_pairs(users.astype(np.int64), items.astype(np.int64), self.user_weights_,
                             self.item_weights_, self.user_factors_, self.item_factors_,
                             np.float32(self.global_mean_))

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.global_item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.global_user_factors_

    # ------------------------------------------------------------ fold-in
    def fold_in(self, rows: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global factors (n_new, g), kernel weights (T, n_new) and local factors (T, n_new, k)
        of new users from their rating rows, each by ridge regression on the fixed items."""
        from ._foldin import ridge_fold_in
        from ._llorma import fold_in_local, kernel_weights

        rows = sp.csr_array(rows)
        rows.sort_indices()
        indptr = rows.indptr.astype(np.int64)
        indices = rows.indices.astype(np.int64)
        data = rows.data.astype(np.float32)
        gq = np.ascontiguousarray(self.global_item_factors_, dtype=np.float32)
        _, gp = ridge_fold_in(indptr, indices, data, gq, np.zeros(self.n_items_, np.float32),
                              np.float32(max(self.global_reg, 1e-3)), False)
        wu = kernel_weights(gp, self.global_user_factors_[self.anchor_users_], float(self.width))
        p = fold_in_local(indptr, indices, data, wu, self.item_weights_, self.item_factors_,
                          np.float32(max(self.reg, 1e-3)))
        return gp, wu, p

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        _, wu, p = self.fold_in(rows)
        return self._combine(wu, p, None)
