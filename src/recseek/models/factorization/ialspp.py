"""iALS++: implicit ALS solved by block (subspace) coordinate descent."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..registry import register
from ._implicit import FactorModel, balanced_chunks, csr_parts, gram, max_row, n_chunks


@register(aliases=("ials++", "ialspp"))
class IALSPlusPlus(FactorModel):
    """iALS++: implicit alternating least squares with subspace optimisation.

    Rendle, Krichene, Zhang & Koren, "iALS++: Speeding up Matrix Factorization with
    Subspace Optimization", arXiv 2110.14044, 2021. The objective is iALS's
    (Rendle et al., "Revisiting the Performance of iALS on Item Recommendation Benchmarks",
    RecSys 2022):

    ``sum_{(u,i) observed} (u.v_i - 1)^2 + alpha0 sum_{all (u,i)} (u.v_i)^2
    + reg (sum_u (|I_u| + alpha0 |I|)^nu |u|^2 + sum_i (|U_i| + alpha0 |U|)^nu |v_i|^2)``.

    Each half-step visits the latent dimensions in blocks of ``block_size`` and solves each
    block exactly for every user (then item) with the rest fixed; the predictions of the
    observed pairs are cached, so a block costs ``O(|I_u| b^2 + b^3)`` per user instead of
    ``O(|I_u| d^2 + d^3)`` for a full ALS solve. ``block_size = factors`` is plain iALS.
    Stored values are ignored: any stored pair is a positive.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        Passes over users and items.
    reg : float
        Regularisation ``lambda``.
    unobserved_weight : float
        ``alpha0``, the weight of the all-pairs term pulling every score to 0.
    reg_exponent : float
        ``nu``: 0 = plain L2, 1 = regularisation proportional to the row's weight mass.
    block_size : int
        Dimensions solved together.
    init_scale : float
        Initial factors are normal with standard deviation ``init_scale / sqrt(factors)``.
    seed : int
        Random seed.
    verbose : bool
        Progress bar over the epochs.
    """

    name = "IALSPlusPlus"
    family = "factorization"
    paper = ("S. Rendle, W. Krichene, L. Zhang, Y. Koren: iALS++: Speeding up Matrix Factorization with "
             "Subspace Optimization, arXiv:2110.14044, 2021")
    rules = {
        "unobserved_weight": Float(lo=0.0),
        "reg_exponent": Float(lo=0.0, hi=1.0),
        "block_size": Int(lo=1),
        "init_scale": Float(lo=0.0),
    }
    test_params = {"factors": 8, "epochs": 5, "block_size": 4}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 8,
        reg: float = 0.02,
        unobserved_weight: float = 0.2,
        reg_exponent: float = 1.0,
        block_size: int = 16,
        init_scale: float = 0.1,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.unobserved_weight = unobserved_weight
        self.reg_exponent = reg_exponent
        self.block_size = block_size
        self.init_scale = init_scale
        self.seed = seed
        self.verbose = verbose

    def _row_reg(self, counts: np.ndarray, n_other: int) -> np.ndarray:
        mass = counts.astype(np.float64) + float(self.unobserved_weight) * n_other
        return (float(self.reg) * mass ** float(self.reg_exponent)).astype(np.float32)

    def _fit(self, train: Interactions) -> None:
        from ._implicit_kernels import ialspp_sweep

        d = int(self.factors)
        rng = np.random.default_rng(self.seed)
        scale = float(self.init_scale) / np.sqrt(d)
        self.user_factors_ = self._init_factors(train.n_users, scale, rng)
        self.item_factors_ = self._init_factors(train.n_items, scale, rng)
        m = train.matrix
        ones = np.ones(m.nnz, dtype=np.float32)
        ui, iu = csr_parts(m.indptr, m.indices, ones, train.shape)
        lam_u = self._row_reg(np.diff(ui[0]), train.n_items)
        lam_i = self._row_reg(np.diff(iu[0]), train.n_users)
        block = min(int(self.block_size), d)
        alpha0 = float(self.unobserved_weight)
        chunks_u = balanced_chunks(ui[0], n_chunks())
        chunks_i = balanced_chunks(iu[0], n_chunks())
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            g = gram(self.item_factors_).astype(np.float32)
            ialspp_sweep(ui[0], ui[1], self.user_factors_, self.item_factors_, g, alpha0, lam_u, block,
                         chunks_u, max(max_row(ui[0]), 1))
            g = gram(self.user_factors_).astype(np.float32)
            ialspp_sweep(iu[0], iu[1], self.item_factors_, self.user_factors_, g, alpha0, lam_i, block,
                         chunks_i, max(max_row(iu[0]), 1))
            self._check_finite(epoch, self.user_factors_, self.item_factors_)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        """Fold-in: the exact minimiser of the user objective given the item factors."""
        from ._implicit_kernels import solve_rows

        rows = sp.csr_array(rows)
        y = self.item_factors_
        ones = np.ones(rows.nnz, dtype=np.float32)
        base = (float(self.unobserved_weight) * gram(y)).astype(np.float32)
        lam = self._row_reg(np.diff(rows.indptr), self.n_items_)
        out = np.empty((rows.shape[0], y.shape[1]), dtype=np.float32)
        if rows.shape[0]:
            solve_rows(np.asarray(rows.indptr, np.int64), np.asarray(rows.indices, np.int32), ones, ones, y, base,
                       lam, np.arange(rows.shape[0], dtype=np.int64), out)
        return out @ y.T
