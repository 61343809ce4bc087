"""HFT: Hidden Factors as Topics -- ratings and review topics through one user vector."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, StateSpec
from ..factorization._base import LatentRatingModel, init_normal, training_arrays
from ..registry import register


def review_tokens(train: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """``(d_ptr, words)``: the word ids of every training record's review, with repetition."""
    w = sp.csr_array(train.meta["review_words"])
    w.sort_indices()
    counts = np.rint(w.data).astype(np.int64)
    counts = np.maximum(counts, 0)
    words = np.repeat(w.indices.astype(np.int64), counts)
    per_row = np.add.reduceat(counts, w.indptr[:-1]) if w.nnz else np.zeros(w.shape[0], np.int64)
    per_row = np.where(np.diff(w.indptr) > 0, per_row, 0)
    d_ptr = np.zeros(w.shape[0] + 1, dtype=np.int64)
    np.cumsum(per_row, out=d_ptr[1:])
    return d_ptr, words


@register
class HFT(LatentRatingModel):
    """Hidden Factors as Topics: a biased MF whose user factors are also review topics.

    McAuley & Leskovec (2013). The rating is ``clip(mu + b_u + b_i + p_u . q_i)``; the
    words of user ``u``'s reviews are drawn from topics with proportions ``theta_u =
    softmax(kappa p_u)`` and topic-word distributions ``phi_k = softmax(psi_k)``. The
    objective is the squared rating error plus L2 penalties minus the log-likelihood of
    the words' topic assignments ``z``. Training follows JStarCraft RNS: every epoch runs
    ``sgd_passes`` ordered SGD passes over the ratings (the user factors also climb
    ``kappa (n_uf - n_u theta_uf)``, the gradient of the topic log-likelihood of the
    record's review; ``psi`` climbs ``n_kw - n_k phi_kw``), then recomputes ``theta`` and
    ``phi`` and draws every word's topic anew from ``theta_{u,k} phi_{k,w}`` (one Gibbs
    sweep). The paper fits the same objective with L-BFGS, and ties topics to item factors in
    its main variant; this is its user variant, the one JStarCraft RNS implements.

    Differences from JStarCraft's code: the topic gradients above are those of the
    log-likelihood (JStarCraft adds ``1 - theta_{u,z}`` to the topic's factor and
    ``-theta_{u,z}`` to the others, and moves ``psi`` by ``V phi - 1``).

    Needs the ``"reviews"`` side data (``meta["review_words"]``, word counts per record).

    Parameters
    ----------
    factors : int
        K, latent dimensions = topics (``recommender.factor.number``).
    epochs : int
        Rounds of ``sgd_passes`` SGD passes plus one Gibbs sweep (``recommender.iterator.maximum``).
    sgd_passes : int
        SGD passes over the ratings per epoch (5 in JStarCraft).
    learning_rate : float
        SGD step (``recommender.iterator.learnrate``).
    reg_user, reg_item, reg_bias : float
        L2 weights of p_u, q_i and the biases (``recommender.user.regularization`` /
        ``item.regularization`` / ``bias.regularization``).
    kappa : float
        The softmax sharpness linking p_u to theta_u (fixed; JStarCraft uses 1).
    init_std : float
        Standard deviation of the normal initialisation of the biases (the factors start
        at 0 and psi uniform in [0, 0.1), as in JStarCraft).
    seed : int or None
        Seed of the initialisation and of the topic draws.
    verbose : bool
        Show a progress bar with the training RMSE.

    Learned state
    -------------
    user_factors_ (n_users, factors), item_factors_ (n_items, factors), user_bias_, item_bias_,
    global_bias_, topic_words_ (factors, n_words) = phi. New users are folded in from
    ratings by ridge regression.
    """

    name = "HFT"
    family: ClassVar[str] = "content"
    paper = ("McAuley & Leskovec. Hidden Factors and Hidden Topics: Understanding Rating Dimensions with "
             "Review Text. RecSys 2013")
    requires: ClassVar[tuple[str, ...]] = ("reviews",)
    rules: ClassVar[dict[str, Any]] = {"sgd_passes": Int(lo=1), "kappa": Float(lo=0.0)}
    state: ClassVar[dict[str, StateSpec]] = {"topic_words_": Array("float32", ("factors", "n_words"))}
    test_params = {"epochs": 4, "learning_rate": 0.02}

    def __init__(self, factors: int = 10, epochs: int = 2, sgd_passes: int = 5, learning_rate: float = 0.01,
                 reg_user: float = 0.01, reg_item: float = 0.01, reg_bias: float = 0.01, kappa: float = 1.0,
                 init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.sgd_passes = sgd_passes
        self.learning_rate = learning_rate
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.reg_bias = reg_bias
        self.kappa = kappa
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    @property
    def fold_in_reg(self) -> float:
        return float(max(self.reg_user, 1e-3))

    def _fit(self, train: Interactions) -> None:
        from ._d_hft import hft_pass, sample_topics, seed_kernels, softmax_rows, word_counts

        users, items, ratings = training_arrays(train)
        d_ptr, words = review_tokens(train)
        n_words = int(train.meta["review_words"].shape[1])
        rng = np.random.default_rng(self.seed)
        seed_kernels(int(rng.integers(2**31 - 1)))
        k = int(self.factors)
        bu = init_normal(rng, (self.n_users_,), float(self.init_std))
        bi = init_normal(rng, (self.n_items_,), float(self.init_std))
        p = np.zeros((self.n_users_, k), dtype=np.float32)
        q = np.zeros((self.n_items_, k), dtype=np.float32)
        psi = (0.1 * rng.random((k, n_words))).astype(np.float32)
        topics = rng.integers(0, k, words.shape[0]).astype(np.int64)
        theta = np.empty((self.n_users_, k), dtype=np.float32)
        phi = np.empty((k, n_words), dtype=np.float32)
        f32 = np.float32
        lr = f32(self.learning_rate)
        kappa = f32(self.kappa)
        lo, hi = f32(self.rating_min_), f32(self.rating_max_)
        softmax_rows(p, kappa, theta)
        softmax_rows(psi, f32(1.0), phi)
        bar = self._progress(range(int(self.epochs)), total=int(self.epochs))
        for epoch in bar:
            n_zw = word_counts(d_ptr, words, topics, k, n_words)
            n_z = n_zw.sum(axis=1, keepdims=True)
            sse = 0.0
            for _ in range(int(self.sgd_passes)):
                sse = hft_pass(users, items, ratings, d_ptr, topics, theta, p, q, bu, bi, f32(self.global_mean_),
                               lr, f32(self.reg_user), f32(self.reg_item), f32(self.reg_bias), lo, hi, kappa)
                psi += lr * (n_zw - n_z * phi)
            self._check_finite(epoch, np.asarray(sse), p, q, psi)
            softmax_rows(p, kappa, theta)
            softmax_rows(psi, f32(1.0), phi)
            sample_topics(users, d_ptr, words, topics, theta, phi)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(rmse=f"{np.sqrt(sse / len(ratings)):.4f}")
        self._finish(p, q, bu, bi, float(self.global_mean_))
        self.topic_words_ = np.ascontiguousarray(phi, dtype=np.float32)
