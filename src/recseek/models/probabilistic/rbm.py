"""Restricted Boltzmann machine for collaborative filtering (rating prediction), trained by
contrastive divergence."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, RatingPredictor, Scalar, Sparse
from ..registry import register
from ._b_common import nearest_levels, progress_bar, rating_levels, sweep_seeds

#: Users per block when scoring (bounds the (users, items, levels) logits in memory).
SCORE_USERS = 64


@register
class RBM(RatingPredictor):
    """Restricted Boltzmann machine with softmax visible units, one RBM per user sharing
    its weights with every other user's.

    A user's ratings are the visible units: one softmax unit over the ``R`` rating levels
    per rated item (unrated items are left out of that user's RBM); ``F = factors``
    binary hidden units are connected to every visible unit by weights ``W[i, r, j]``:
    ``p(h_j = 1 | V) = sigmoid(b_j + sum_{i rated} W[i, r_i, j])`` and
    ``p(v_i = r | h) = softmax_r(b_ir + sum_j h_j W[i, r, j])``.

    Training: contrastive divergence CD-T over mini-batches of ``batch_size`` users in a
    shuffled order: the positive statistics use ``p(h | data)``, the negative ones the
    visible levels resampled after ``cd_steps`` alternating Gibbs steps and
    ``p(h | reconstruction)``; gradient ascent with momentum and L2 weight decay, the
    gradient of an item's weights and biases averaged over the batch users who rated it
    (as JStarCraft does). The phases of a batch's users run in parallel, each user on its
    own random stream, so a seed reproduces a fit on any number of threads.

    Prediction (the paper's mean-field rule): ``p_hat = p(h | user's ratings)``, then
    ``E[r | u, i] = sum_r r softmax_r(b_ir + sum_j p_hat_j W[i, r, j])``. New users are
    scored the same way from their ratings (no refit needed).

    Parameters
    ----------
    factors : int
        F, hidden units (JStarCraft ``recommender.factor.number``).
    epochs : int
        Passes over the users (``recommender.iterator.maximum``).
    learning_rate : float
        Step of the weights and biases (``recommender.epsilonw``, ``epsilonvb``,
        ``epsilonhb``, equal in JStarCraft's settings).
    momentum : float
        Momentum of the updates (``recommender.momentum``).
    reg : float
        Weight decay of ``W`` (``recommender.lamtaw``).
    reg_bias : float
        Weight decay of the biases (``recommender.lamtab``).
    cd_steps : int
        T, Gibbs steps of contrastive divergence (``recommender.tstep``).
    batch_size : int
        Users per mini-batch (JStarCraft's default 100).
    init_std : float
        Standard deviation of the normal initial weights.
    seed : int or None
        Seed of the initial weights, the user order and the Gibbs steps.
    verbose : bool
        Progress bar with the reconstruction cross-entropy per rating.

    Learned state
    -------------
    weights_ : (n_items, n_levels, factors)
        ``W``.
    visible_bias_ : (n_items, n_levels)
        ``b_ir`` (initialised to the log of the item's smoothed level frequencies).
    hidden_bias_ : (factors,)
        ``b_j``.
    levels_ : (n_levels,)
        The distinct training ratings.
    rows_ : sparse (n_users, n_items)
        Each user's training ratings as level indices + 1, needed to score the user.

    Reference: Salakhutdinov, Mnih & Hinton. Restricted Boltzmann Machines for
    Collaborative Filtering. ICML 2007.
    """

    name = "RBM"
    family = "probabilistic"
    paper = "Salakhutdinov, Mnih & Hinton. Restricted Boltzmann Machines for Collaborative Filtering. ICML 2007"
    rules: ClassVar[dict] = {"momentum": Float(lo=0.0, hi=1.0), "cd_steps": Int(lo=1), "reg_bias": Float(lo=0.0)}
    test_params: ClassVar[dict] = {"factors": 32, "epochs": 20, "learning_rate": 0.05, "batch_size": 16}
    divergence_hint: ClassVar[str] = "lower learning_rate or momentum"
    state: ClassVar[dict] = {
        "levels_": Array("float32", ("n_levels",)),
        "weights_": Array("float32", ("n_items", "n_levels", "factors")),
        "visible_bias_": Array("float32", ("n_items", "n_levels")),
        "hidden_bias_": Array("float32", ("factors",)),
        "rows_": Sparse(("n_users", "n_items"), "float32"),
        "loss_": Scalar(float, finite=False),
    }

    def __init__(self, factors: int = 500, epochs: int = 20, learning_rate: float = 0.01, momentum: float = 0.1,
                 reg: float = 0.01, reg_bias: float = 0.0, cd_steps: int = 1, batch_size: int = 100,
                 init_std: float = 0.01, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.reg = reg
        self.reg_bias = reg_bias
        self.cd_steps = cd_steps
        self.batch_size = batch_size
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._b_rbm import rbm_phases, rbm_update

        m = train.matrix
        levels, lev = rating_levels(train)
        self.levels_ = levels
        n_items, R, F = train.n_items, levels.shape[0], int(self.factors)
        indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int64)
        rng = np.random.default_rng(self.seed)
        W = (float(self.init_std) * rng.standard_normal((n_items, R, F))).astype(np.float32)
        counts = np.zeros((n_items, R))
        np.add.at(counts, (indices, lev), 1.0)
        bv = np.log((counts + 1.0) / (counts.sum(axis=1, keepdims=True) + R)).astype(np.float32)
        bh = np.zeros(F, np.float32)
        dW, incW = np.zeros_like(W), np.zeros_like(W)
        dbv, incbv = np.zeros_like(bv), np.zeros_like(bv)
        dbh, incbh = np.zeros_like(bh), np.zeros_like(bh)
        count = np.zeros(n_items, np.int64)
        touched = np.zeros(n_items, np.int64)
        neg = np.zeros(indices.shape[0], np.int32)
        B = int(self.batch_size)
        h0, h1 = np.zeros((B, F)), np.zeros((B, F))
        active = np.flatnonzero(np.diff(indptr) > 0).astype(np.int64)
        lr, mom = np.float32(self.learning_rate), np.float32(self.momentum)
        reg, reg_b = np.float32(self.reg), np.float32(self.reg_bias)
        steps = int(self.cd_steps)
        self.loss_ = 0.0
        with progress_bar(self, int(self.epochs), unit="epoch", label="xent") as step:
            for epoch in range(int(self.epochs)):
                order = rng.permutation(active)
                seeds = sweep_seeds(self.seed, epoch, order.shape[0])
                nll = 0.0
                for start in range(0, order.shape[0], B):
                    batch = order[start:start + B]
                    nb = batch.shape[0]
                    nll += rbm_phases(batch, indptr, indices, lev, W, bv, bh, steps, seeds[start:start + nb],
                                      h0[:nb], h1[:nb], neg)
                    rbm_update(batch, indptr, indices, lev, neg, h0[:nb], h1[:nb], W, bv, bh, dW, dbv, dbh,
                               incW, incbv, incbh, count, touched, lr, mom, reg, reg_b)
                self.loss_ = float(nll) / max(1, indices.shape[0])
                step(self.loss_)
                self._check_finite(epoch, np.asarray(self.loss_), bh)
        self._check_finite(int(self.epochs), W, bv, bh)
        self.weights_ = W
        self.visible_bias_ = bv
        self.hidden_bias_ = bh
        self.rows_ = sp.csr_array((lev.astype(np.float32) + 1.0, indices, indptr), shape=m.shape)

    # ------------------------------------------------------------ scoring
    def _hidden_of(self, rows: sp.csr_array, lev: np.ndarray) -> np.ndarray:
        from ._b_rbm import rbm_hidden_rows

        return rbm_hidden_rows(rows.indptr.astype(np.int64), rows.indices.astype(np.int64), lev,
                               self.weights_, self.hidden_bias_)

    def _expected(self, hidden: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        W = self.weights_ if items is None else self.weights_[items]
        bv = self.visible_bias_ if items is None else self.visible_bias_[items]
        n_i, R, F = W.shape
        flat = W.reshape(n_i * R, F)
        out = np.empty((hidden.shape[0], n_i), dtype=np.float32)
        levels = self.levels_.astype(np.float64)
        for s in range(0, hidden.shape[0], SCORE_USERS):
            h = hidden[s:s + SCORE_USERS].astype(np.float32)
            logits = (h @ flat.T).reshape(h.shape[0], n_i, R).astype(np.float64) + bv[None]
            logits -= logits.max(axis=2, keepdims=True)
            p = np.exp(logits)
            out[s:s + SCORE_USERS] = (p @ levels) / p.sum(axis=2)
        return out

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        rows = sp.csr_array(self.rows_[users])
        lev = (rows.data - 1.0).astype(np.int32)
        return self._expected(self._hidden_of(rows, lev), items)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(users, return_inverse=True)
        rows = sp.csr_array(self.rows_[uniq])
        hidden = self._hidden_of(rows, (rows.data - 1.0).astype(np.int32))
        h = hidden[inv].astype(np.float64)  # (n, F)
        W = self.weights_[items].astype(np.float64)  # (n, R, F)
        logits = np.einsum("nrf,nf->nr", W, h) + self.visible_bias_[items]
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return ((p @ self.levels_.astype(np.float64)) / p.sum(axis=1)).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows)
        rows.sort_indices()
        lev = nearest_levels(self.levels_, rows.data)
        out = self._expected(self._hidden_of(rows, lev), None)
        return np.clip(out, self.rating_min_, self.rating_max_)

    def user_vectors(self) -> np.ndarray:
        """Mean-field hidden activations of every user (n_users, factors)."""
        self._check_fitted()
        return self._score_hidden_all()

    def _score_hidden_all(self) -> np.ndarray:
        rows = sp.csr_array(self.rows_)
        return self._hidden_of(rows, (rows.data - 1.0).astype(np.int32))

    def item_vectors(self) -> np.ndarray:
        """Each item's weights, levels weighted by their centred rating (n_items, factors)."""
        self._check_fitted()
        centred = self.levels_ - self.levels_.mean()
        return np.einsum("irf,r->if", self.weights_, centred).astype(np.float32)
