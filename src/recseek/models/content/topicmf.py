"""TopicMF: ratings and review topics factorised together (TopicMFAT, TopicMFMT).

Bao, Fang & Zhang (2014) tie each review's topic proportions to the latent factors of
its user and item. With review ``d`` written by user ``u`` on item ``i``,

    theta_d = softmax(kappa_1 |p_u| + kappa_2 |q_i|)      (TopicMFAT, additive transform)
    theta_d = softmax(kappa |p_u| * |q_i|)                (TopicMFMT, multiplicative)

and the review's word shares ``W[d, w]`` (count / review length) are approximated by
``theta_d . phi[:, w]`` (a non-negative factorisation with topic-word matrix ``phi``).
The objective is the biased-MF squared error ``(r - mu - b_u - b_i - p_u . q_i)^2`` plus
``review_weight`` times the review reconstruction error, with L2 penalties. Training
follows JStarCraft RNS: per epoch one ordered SGD pass over the ratings (record by record,
users in index order) that updates biases, factors and ``kappa`` through the review term
(``theta`` and ``phi`` held fixed), then ``theta`` from the new factors, then ``phi`` by
one multiplicative NMF step ``phi <- phi * (theta' W) / (theta' theta phi)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float
from ..base import Array, StateSpec
from ..factorization._base import LatentRatingModel, init_normal, training_arrays
from ..registry import register

_PAPER = ("Bao, Fang & Zhang. TopicMF: Simultaneously Exploiting Ratings and Reviews for Recommendation. "
          "AAAI 2014")


def review_shares(train: Interactions) -> sp.csr_array:
    """Word shares per training record, (nnz, n_words) float32: counts / review length."""
    w = sp.csr_array(train.meta["review_words"], dtype=np.float32)
    w.sort_indices()
    lengths = np.asarray(w.sum(axis=1)).ravel()
    scale = np.where(lengths > 0, 1.0 / np.maximum(lengths, 1e-12), 0.0).astype(np.float32)
    out = sp.csr_array((w.data * np.repeat(scale, np.diff(w.indptr)), w.indices, w.indptr), shape=w.shape)
    return out


class _TopicMF(LatentRatingModel):
    family: ClassVar[str] = "content"
    paper: ClassVar[str] = _PAPER
    requires: ClassVar[tuple[str, ...]] = ("reviews",)
    multiplicative: ClassVar[bool] = False
    rules: ClassVar[dict[str, Any]] = {"review_weight": Float(lo=0.0), "kappa_init": Float()}
    divergence_hint: ClassVar[str] = "lower learning_rate or review_weight"
    state: ClassVar[dict[str, StateSpec]] = {
        "topic_words_": Array("float32", ("factors", "n_words")),
        "kappa_": Array("float32", (2,), finite=True),
    }
    test_params = {"epochs": 10, "learning_rate": 0.05}

    def __init__(self, factors: int = 10, epochs: int = 10, learning_rate: float = 0.01, reg_user: float = 0.001,
                 reg_item: float = 0.001, reg_bias: float = 0.001, review_weight: float = 0.001,
                 kappa_init: float = 0.0, init_std: float = 0.01, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.reg_bias = reg_bias
        self.review_weight = review_weight
        self.kappa_init = kappa_init
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    @property
    def fold_in_reg(self) -> float:
        return float(max(self.reg_user, 1e-3))

    def _fit(self, train: Interactions) -> None:
        from ._d_topicmf import topic_proportions, topicmf_pass

        users, items, ratings = training_arrays(train)
        w = review_shares(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        std = float(self.init_std)
        bu = init_normal(rng, (self.n_users_,), std)
        bi = init_normal(rng, (self.n_items_,), std)
        p = init_normal(rng, (self.n_users_, k), std)
        q = init_normal(rng, (self.n_items_, k), std)
        kappa = np.full(2, self.kappa_init, dtype=np.float32)
        theta = np.empty((len(ratings), k), dtype=np.float32)
        topic_proportions(users, items, p, q, kappa, self.multiplicative, theta)
        phi = (0.01 * rng.random((k, w.shape[1]))).astype(np.float32)
        w_ptr, w_idx, w_val = w.indptr.astype(np.int64), w.indices.astype(np.int64), w.data.astype(np.float32)
        wt = sp.csr_array(w.T)
        f32 = np.float32
        bar = self._progress(range(int(self.epochs)), total=int(self.epochs))
        for epoch in bar:
            sse = topicmf_pass(users, items, ratings, w_ptr, w_idx, w_val, theta, phi, p, q, bu, bi,
                               f32(self.global_mean_), f32(self.learning_rate), f32(self.review_weight),
                               f32(self.reg_user), f32(self.reg_item), f32(self.reg_bias), kappa,
                               self.multiplicative)
            self._check_finite(epoch, np.asarray(sse), p, q, kappa)
            topic_proportions(users, items, p, q, kappa, self.multiplicative, theta)
            numer = np.asarray((wt @ theta).T, dtype=np.float32)
            denom = (theta.T @ theta) @ phi
            phi = (phi * numer / np.maximum(denom, 1e-30)).astype(np.float32)
            self._check_finite(epoch, phi)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(rmse=f"{np.sqrt(sse / len(ratings)):.4f}", kappa=f"{kappa[0]:.3g}")
        self._finish(p, q, bu, bi, float(self.global_mean_))
        self.topic_words_ = np.ascontiguousarray(phi, dtype=np.float32)
        self.kappa_ = kappa.astype(np.float32)


_DOC = """
    Needs the ``"reviews"`` side data (``meta["review_words"]``, e.g. from
    :func:`recseek.data.readers.read_reviews` on ``musical_instruments.txt``).

    Parameters
    ----------
    factors : int
        K, latent dimensions = topics (JStarCraft ``recommender.topic.number``).
    epochs : int
        Training rounds (``recommender.iterator.maximum``).
    learning_rate : float
        SGD step (``recommender.iterator.learnrate``).
    reg_user, reg_item, reg_bias : float
        L2 weights of p_u, q_i and the biases (``lambdaU`` / ``lambdaV`` / ``lambdaB``).
    review_weight : float
        lambda, the weight of the review reconstruction in the gradient of kappa
        (``recommender.regularization.lambda``).
    kappa_init : float
        Initial value of kappa (both kappas for TopicMFAT). 0 -- uniform topic proportions
        at the start -- is the value JStarCraft RNS effectively starts from.
    init_std : float
        Standard deviation of the normal initialisation of factors and biases
        (``recommender.init.std``).
    seed : int or None
        Seed of the initialisation.
    verbose : bool
        Show a progress bar with the training RMSE and kappa.

    Learned state
    -------------
    user_factors_ (n_users, factors), item_factors_ (n_items, factors), user_bias_, item_bias_,
    global_bias_ (the training mean), topic_words_ (factors, n_words) = phi, kappa_ (2,).
    Prediction ``mu + b_u + b_i + p_u . q_i``; new users are folded in by ridge regression.
"""


@register
class TopicMFAT(_TopicMF):
    __doc__ = ("TopicMF with the additive transform ``theta = softmax(kappa_1 |p_u| + kappa_2 |q_i|)``.\n"
               + _DOC)
    name = "TopicMFAT"
    multiplicative = False


@register
class TopicMFMT(_TopicMF):
    __doc__ = "TopicMF with the multiplicative transform ``theta = softmax(kappa |p_u| * |q_i|)``.\n" + _DOC
    name = "TopicMFMT"
    multiplicative = True
