"""Matrix factorisation for rating prediction trained by SGD: BiasedMF and PMF."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from .._params import Float
from ..base import Scalar, StateSpec
from ..registry import register
from ._base import LatentRatingModel, init_normal, training_arrays

#: Once deterministic training is switched off (``recseek.set_deterministic(False)``), SGD
#: from this many ratings on runs lock-free over as many chunks as numba threads.
PARALLEL_MIN_RATINGS = 1_000_000


def sgd_chunks(nnz: int) -> int:
    """Chunks of an SGD epoch: one (a single ordered pass) unless parallel SGD is allowed and pays."""
    from ..._numba import get_num_threads, is_deterministic

    return get_num_threads() if nnz >= PARALLEL_MIN_RATINGS and not is_deterministic() else 1


class _SGDFactorization(LatentRatingModel):
    """Shared SGD training loop of BiasedMF and PMF."""

    use_bias = True
    state: ClassVar[dict[str, StateSpec]] = {
        "loss_": Scalar(float, finite=False),
    }

    def _fit(self, train: Interactions) -> None:
        from ._sgd import mf_epoch

        users, items, ratings = training_arrays(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        p = init_normal(rng, (self.n_users_, k), self.init_std)
        q = init_normal(rng, (self.n_items_, k), self.init_std)
        bu = np.zeros(self.n_users_, np.float32)
        bi = np.zeros(self.n_items_, np.float32)
        mu = np.float32(self.global_mean_)
        lr = np.float32(self.learning_rate)
        reg = np.float32(self.reg)
        breg = np.float32(self.reg if getattr(self, "reg_bias", None) is None else self.reg_bias)
        chunks = sgd_chunks(len(ratings))
        self.loss_ = 0.0
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            order = rng.permutation(len(ratings)).astype(np.int64)
            loss = mf_epoch(users, items, ratings, order, p, q, bu, bi, mu, lr, reg, reg, breg, breg,
                            self.use_bias, chunks)
            self._check_finite(epoch, np.asarray(loss))
            self.loss_ = float(loss) / len(ratings)
        self._check_finite(int(self.epochs), p, q, bu, bi)
        self._finish(p, q, bu, bi, float(mu))


@register
class BiasedMF(_SGDFactorization):
    """Matrix factorisation with user and item biases, trained by SGD.

    ``r(u, i) = mu + b_u + b_i + p_u . q_i``; squared error plus L2 penalties, one
    shuffled pass over the ratings per epoch. Koren, Bell & Volinsky (2009).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        Passes over the training ratings.
    learning_rate : float
        SGD step size.
    reg : float
        L2 weight of the user and item factors.
    reg_bias : float or None
        L2 weight of the biases (None: ``reg``).
    init_std : float
        Standard deviation of the normal factor initialisation.
    seed : int or None
        Random seed (initialisation and shuffling).
    verbose : bool
        Show a progress bar.
    """

    name = "BiasedMF"
    paper = "Koren, Bell & Volinsky. Matrix Factorization Techniques for Recommender Systems. IEEE Computer, 2009"
    rules = {"reg_bias": Float(lo=0.0, none_ok=True), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 10}

    def __init__(self, factors: int = 32, epochs: int = 20, learning_rate: float = 0.01, reg: float = 0.05,
                 reg_bias: float | None = 0.01, init_std: float = 0.1, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose


@register
class PMF(_SGDFactorization):
    """Probabilistic matrix factorisation: ``r(u, i) = mu + p_u . q_i`` by SGD (MAP estimate).

    Gaussian likelihood with zero-mean spherical Gaussian priors on the factors (L2
    penalties); ratings are centred on the training mean ``mu`` as in the authors' code.
    Salakhutdinov & Mnih (2007).

    Parameters
    ----------
    factors, epochs, learning_rate, reg, init_std, seed, verbose
        As for :class:`BiasedMF` (no biases).
    """

    name = "PMF"
    paper = "Salakhutdinov & Mnih. Probabilistic Matrix Factorization. NIPS 2007"
    rules = {"init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 10}
    use_bias = False
    fold_in_bias = False

    def __init__(self, factors: int = 10, epochs: int = 40, learning_rate: float = 0.01, reg: float = 0.08,
                 init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose
