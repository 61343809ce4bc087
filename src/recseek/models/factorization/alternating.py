"""Rating factorisation by alternating updates: NMF, MFALS (ALS-WR) and CCD (CCD++)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, StateSpec
from ..registry import register
from ._base import LatentRatingModel, init_normal


def _sides(train: Interactions) -> tuple[tuple, tuple, np.ndarray]:
    """CSR parts of the ratings and of their transpose, and the transpose's CSR positions."""
    m = train.matrix
    u = (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float32))
    pos_m = sp.csr_array((np.arange(m.nnz, dtype=np.float64) + 1, m.indices, m.indptr), shape=m.shape)
    t = sp.csr_array(pos_m.T.tocsr())
    t.sort_indices()
    pos = (t.data - 1).astype(np.int64)
    i = (t.indptr.astype(np.int64), t.indices.astype(np.int64), m.data[pos].astype(np.float32))
    return u, i, pos


@register
class NMF(LatentRatingModel):
    """Non-negative matrix factorisation with multiplicative updates on the observed ratings.

    ``r(u, i) = w_u . h_i`` with ``w, h >= 0``; the Lee-Seung updates for the squared error
    restricted to the known entries, with an optional L2 term weighted by the number of
    ratings. Users or items without training ratings are predicted the global mean.
    Lee & Seung (2001).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        Rounds of user and item updates.
    reg : float
        L2 weight (per rating) of the factors.
    seed : int or None
        Seed of the uniform initialisation.
    verbose : bool
        Show a progress bar.
    """

    name = "NMF"
    paper = "Lee & Seung. Algorithms for Non-negative Matrix Factorization. NIPS 2001"
    test_params = {"factors": 8, "epochs": 10}
    fold_in_bias = False
    state: ClassVar[dict[str, StateSpec]] = {
        "cold_users_": Array("bool", ("n_users",)),
        "cold_items_": Array("bool", ("n_items",)),
    }

    def __init__(self, factors: int = 100, epochs: int = 10, reg: float = 0.02, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._als import nmf_side

        (ui, uj, ud), (ii, ij, idata), _ = _sides(train)
        if ud.min() < 0:
            from ...errors import DataError

            raise DataError(f"{self.display_name} needs non-negative ratings (found {float(ud.min())})")
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        scale = 2.0 * np.sqrt(max(self.global_mean_, 1e-3) / k)
        w = (scale * rng.random((self.n_users_, k))).astype(np.float32)
        h = (scale * rng.random((self.n_items_, k))).astype(np.float32)
        reg = np.float32(self.reg)
        eps = np.float32(1e-9)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            nmf_side(ui, uj, ud, w, h, reg, eps)
            nmf_side(ii, ij, idata, h, w, reg, eps)
            self._check_finite(epoch, w[:1], h[:1])
        self._check_finite(int(self.epochs), w, h)
        self._finish(w, h)
        self.cold_users_ = np.diff(train.matrix.indptr) == 0
        self.cold_items_ = np.bincount(train.matrix.indices, minlength=self.n_items_) == 0

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        out = super()._score(users, items)
        cold_items = self.cold_items_ if items is None else self.cold_items_[items]
        out[self.cold_users_[users]] = self.global_mean_
        out[:, cold_items] = self.global_mean_
        return out

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = super()._predict(users, items)
        out[self.cold_users_[users] | self.cold_items_[items]] = self.global_mean_
        return out


@register
class MFALS(LatentRatingModel):
    """Matrix factorisation by alternating least squares with weighted-lambda regularisation.

    ``r(u, i) = mu + p_u . q_i`` (ratings centred on the training mean ``mu``); each
    half-step solves every user (item) exactly with ridge weight ``reg * n_u`` (ALS-WR). Zhou, Wilkinson, Schreiber & Pan (2008).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        ALS rounds (one user and one item solve each).
    reg : float
        Ridge weight per rating.
    init_std : float
        Standard deviation of the item factor initialisation.
    seed, verbose
        Seed and progress bar.
    """

    name = "MFALS"
    paper = ("Zhou, Wilkinson, Schreiber & Pan. Large-Scale Parallel Collaborative Filtering for the "
             "Netflix Prize. AAIM 2008")
    rules = {"init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 5}
    fold_in_bias = False

    def __init__(self, factors: int = 10, epochs: int = 15, reg: float = 0.1, init_std: float = 0.1,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._als import als_side

        (ui, uj, ud), (ii, ij, idata), _ = _sides(train)
        mu = np.float32(self.global_mean_)
        ud = ud - mu
        idata = idata - mu
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        p = np.zeros((self.n_users_, k), np.float32)
        q = init_normal(rng, (self.n_items_, k), self.init_std)
        reg = np.float32(self.reg)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            als_side(ui, uj, ud, p, q, reg, True)
            als_side(ii, ij, idata, q, p, reg, True)
            self._check_finite(epoch, p[:1], q[:1])
        self._check_finite(int(self.epochs), p, q)
        self._finish(p, q, global_bias=float(mu))


@register
class CCD(LatentRatingModel):
    """Matrix factorisation by cyclic coordinate descent over rank-one factors (CCD++).

    ``r(u, i) = mu + p_u . q_i`` (ratings centred on the training mean ``mu``); for each
    latent dimension in turn, the user and item coordinates are updated exactly (``inner``
    times) while the residuals of the known ratings are kept up to date.
    Yu, Hsieh, Si & Dhillon (2012).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        Outer sweeps over all dimensions.
    inner : int
        Coordinate updates per dimension and sweep.
    reg : float
        L2 weight of the factors.
    init_std : float
        Standard deviation of the normal initialisation.
    seed, verbose
        Seed and progress bar.
    """

    name = "CCD"
    paper = ("Yu, Hsieh, Si & Dhillon. Scalable Coordinate Descent Approaches to Parallel Matrix "
             "Factorization for Recommender Systems. ICDM 2012")
    rules = {"inner": Int(lo=1), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 5}
    fold_in_bias = False

    def __init__(self, factors: int = 20, epochs: int = 20, inner: int = 3, reg: float = 1.0, init_std: float = 0.1,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.inner = inner
        self.reg = reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    @property
    def fold_in_reg(self) -> float:
        return 0.05

    def _fit(self, train: Interactions) -> None:
        from ._als import ccd_sweep, residuals

        (ui, uj, ud), (ii, ij, _), pos = _sides(train)
        mu = np.float32(self.global_mean_)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        p = init_normal(rng, (self.n_users_, k), self.init_std)
        q = init_normal(rng, (self.n_items_, k), self.init_std)
        ident = np.arange(len(ud), dtype=np.int64)
        resid = residuals(ui, uj, ud - mu, p, q)
        pt = np.ascontiguousarray(p.T)
        qt = np.ascontiguousarray(q.T)
        reg = np.float32(self.reg)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            ccd_sweep(ui, uj, ident, ii, ij, pos, resid, pt, qt, int(self.inner), reg)
            self._check_finite(epoch, resid)
        self._check_finite(int(self.epochs), pt, qt)
        self._finish(pt.T, qt.T, global_bias=float(mu))
