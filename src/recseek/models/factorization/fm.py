"""Factorisation machines over (user, item) one-hot features: FMSGD, FMALS and FFM.

With a user field and an item field, a factorisation machine predicts
``w0 + w_u + w_i + <v_u, v_i>``; the models differ in how they learn it.
"""

from __future__ import annotations

import numpy as np

from ...data import Interactions
from .._params import Float
from ..registry import register
from ._base import LatentRatingModel, init_normal, training_arrays

_FM_RULES = {"init_std": Float(lo=0.0), "bias_reg": Float(lo=0.0)}


class _FMSGDBase(LatentRatingModel):
    adagrad = False

    def _fit(self, train: Interactions) -> None:
        from ._sgd import fm_epoch

        users, items, ratings = training_arrays(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        p = init_normal(rng, (self.n_users_, k), self.init_std)
        q = init_normal(rng, (self.n_items_, k), self.init_std)
        bu = np.zeros(self.n_users_, np.float32)
        bi = np.zeros(self.n_items_, np.float32)
        w0 = np.array([self.global_mean_], np.float32)
        acc = [np.zeros_like(a) for a in (w0, p, q, bu, bi)]
        lr = np.float32(self.learning_rate)
        reg = np.float32(self.reg)
        breg = np.float32(self.bias_reg)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            order = rng.permutation(len(ratings)).astype(np.int64)
            loss = fm_epoch(users, items, ratings, order, w0, p, q, bu, bi, lr, breg, breg, reg, self.adagrad, *acc)
            self._check_finite(epoch, np.asarray(loss))
        self._check_finite(int(self.epochs), w0, p, q, bu, bi)
        self._finish(p, q, bu, bi, float(w0[0]))


@register
class FMSGD(_FMSGDBase):
    """Factorisation machine trained by stochastic gradient descent.

    Features: the user's and the item's one-hot indicators, so
    ``y = w0 + w_u + w_i + <v_u, v_i>``; squared loss with L2 penalties. Rendle (2010).

    Parameters
    ----------
    factors, epochs, learning_rate, reg, seed, verbose
        As for BiasedMF; ``reg`` weighs the latent vectors.
    bias_reg : float
        L2 weight of ``w0`` and the linear weights.
    init_std : float
        Standard deviation of the latent initialisation.
    """

    name = "FMSGD"
    paper = "Rendle. Factorization Machines. ICDM 2010"
    rules = _FM_RULES
    test_params = {"factors": 8, "epochs": 10}

    def __init__(self, factors: int = 10, epochs: int = 30, learning_rate: float = 0.01, reg: float = 0.05,
                 bias_reg: float = 0.01, init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.bias_reg = bias_reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose


@register
class FFM(_FMSGDBase):
    """Field-aware factorisation machine with a user field and an item field, AdaGrad SGD.

    Each feature keeps one latent vector per other field; with the two fields (user, item)
    the user's vector towards the item field meets the item's vector towards the user
    field: ``y = w0 + w_u + w_i + <v_{u,item}, v_{i,user}>``. Trained with per-parameter
    AdaGrad steps as in the paper. Juan, Zhuang, Chin & Lin (2016).

    Parameters
    ----------
    factors, epochs, learning_rate, reg, bias_reg, init_std, seed, verbose
        As for FMSGD (``learning_rate`` is AdaGrad's base step).
    """

    name = "FFM"
    paper = "Juan, Zhuang, Chin & Lin. Field-aware Factorization Machines for CTR Prediction. RecSys 2016"
    rules = _FM_RULES
    test_params = {"factors": 8, "epochs": 10}
    adagrad = True

    def __init__(self, factors: int = 10, epochs: int = 30, learning_rate: float = 0.05, reg: float = 0.05,
                 bias_reg: float = 0.01, init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.bias_reg = bias_reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose


@register
class FMALS(LatentRatingModel):
    """Factorisation machine trained by alternating least squares (coordinate-wise).

    Every parameter (global bias, linear weights, each latent coordinate) is set to its
    exact minimiser with the others fixed, keeping the residuals of all ratings cached,
    over user and item one-hot features. Rendle, Gantner, Freudenthaler &
    Schmidt-Thieme (2011).

    Parameters
    ----------
    factors, epochs, reg, bias_reg, init_std, seed, verbose
        As for FMSGD (no learning rate).
    """

    name = "FMALS"
    paper = ("Rendle, Gantner, Freudenthaler & Schmidt-Thieme. Fast Context-aware Recommendations with "
             "Factorization Machines. SIGIR 2011")
    rules = _FM_RULES
    test_params = {"factors": 8, "epochs": 5}

    def __init__(self, factors: int = 10, epochs: int = 20, reg: float = 5.0, bias_reg: float = 5.0,
                 init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.bias_reg = bias_reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._als import fm_als_sweep, residuals
        from .alternating import _sides

        (ui, uj, ud), (ii, ij, _), pos = _sides(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        # augmented dimension-major factors: rows 0..k-1 latent, k = (b_u | 1), k+1 = (1 | b_i)
        pt = np.vstack([init_normal(rng, (k, self.n_users_), self.init_std),
                        np.zeros((1, self.n_users_), np.float32), np.ones((1, self.n_users_), np.float32)])
        qt = np.vstack([init_normal(rng, (k, self.n_items_), self.init_std),
                        np.ones((1, self.n_items_), np.float32), np.zeros((1, self.n_items_), np.float32)])
        w0 = float(self.global_mean_)
        resid = residuals(ui, uj, ud - np.float32(w0), np.ascontiguousarray(pt.T), np.ascontiguousarray(qt.T))
        regs = np.full(k + 2, self.reg, np.float32)
        regs[k:] = self.bias_reg
        user_dims = np.array([*range(k), k], dtype=np.int64)
        item_dims = np.array([*range(k), k + 1], dtype=np.int64)
        n = len(resid)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            shift = float(resid.sum()) / (n + self.bias_reg)
            w0 += shift
            resid -= np.float32(shift)
            fm_als_sweep(ui, uj, np.arange(n, dtype=np.int64), ii, ij, pos, resid, pt, qt, user_dims, item_dims,
                         regs, regs)
            self._check_finite(epoch, resid)
        self._check_finite(int(self.epochs), pt, qt)
        self._finish(pt[:k].T, qt[:k].T, pt[k], qt[k + 1], w0)
