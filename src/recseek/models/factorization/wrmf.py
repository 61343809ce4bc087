"""WRMF: weighted regularised matrix factorisation for implicit feedback."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...data._interactions import build_csr
from ...errors import DataError, NotFittedError, ParameterError
from .._params import Float, Int
from ..base import Array, StateSpec
from ..registry import register
from ._implicit import FactorModel, balanced_chunks, confidence_weights, csr_parts, gram, implicit_values, n_chunks


@register
class WRMF(FactorModel):
    """Weighted regularised matrix factorisation (implicit ALS).

    Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets",
    ICDM 2008; each half-step solved approximately with a few conjugate-gradient steps
    warm-started from the previous factors (Takacs, Pilaszy & Tikk, "Applications of the
    conjugate gradient method for implicit feedback collaborative filtering", RecSys 2011).

    Every user-item pair is fitted: observed pairs to 1 with confidence
    ``c = 1 + alpha * r`` (``r`` = stored value), unobserved pairs to 0 with confidence 1,
    plus ``reg`` times the squared norms of the factors. Scores are ``u . v``.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        ALS iterations (a user half-step then an item half-step).
    reg : float
        L2 regularisation of user and item factors. The defaults (``reg=20``,
        ``alpha=1``) were tuned on MovieLens-100K positives; strong regularisation is
        what lets WRMF beat popularity on small data, and ``reg`` should grow with the
        number of interactions per row.
    alpha : float
        Confidence slope: ``c = 1 + alpha * r``.
    cg_steps : int
        Conjugate-gradient steps per row and half-step; 0 solves each row exactly
        (Cholesky), as in the original paper.
    init_std : float
        Standard deviation of the normal initial factors.
    seed : int
        Random seed of the initial factors.
    verbose : bool
        Show a progress bar over the epochs.
    """

    name = "WRMF"
    family = "factorization"
    paper = ("Y. Hu, Y. Koren, C. Volinsky: Collaborative Filtering for Implicit Feedback Datasets, ICDM 2008; "
             "G. Takacs, I. Pilaszy, D. Tikk: Applications of the Conjugate Gradient Method for Implicit "
             "Feedback Collaborative Filtering, RecSys 2011")
    rules = {"cg_steps": Int(lo=0), "init_std": Float(lo=0.0), "reg": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 5}
    state: ClassVar[dict[str, StateSpec]] = {
        # training values aligned with seen_ (incremental training only)
        "values_": Array("float32", ("n_seen",), history=True),
    }

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 15,
        reg: float = 20.0,
        alpha: float = 1.0,
        cg_steps: int = 3,
        init_std: float = 0.01,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.alpha = alpha
        self.cg_steps = cg_steps
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ training
    def _confidence(self, values: np.ndarray) -> np.ndarray:
        return confidence_weights(values, self.alpha, self.display_name)

    def _check_alpha(self, values: np.ndarray) -> None:
        if values.size:
            self._confidence(np.asarray([values.max()], dtype=np.float32))

    def _fit(self, train: Interactions) -> None:
        vals = implicit_values(train, self.display_name)
        self.values_ = vals  # the stored values (shared with train), for partial_fit
        rng = np.random.default_rng(self.seed)
        self.user_factors_ = self._init_factors(train.n_users, self.init_std, rng)
        self.item_factors_ = self._init_factors(train.n_items, self.init_std, rng)
        self._check_alpha(vals)
        m = train.matrix
        (self._ui, self._iu) = csr_parts(m.indptr, m.indices, vals, train.shape)
        try:
            for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
                self._half_step(self._ui, self.user_factors_, self.item_factors_)
                self._half_step(self._iu, self.item_factors_, self.user_factors_)
                self._check_finite(epoch, self.user_factors_, self.item_factors_)
        finally:
            del self._ui, self._iu

    def _gram(self, y: np.ndarray) -> np.ndarray:
        a = gram(y)
        a[np.diag_indices_from(a)] += float(self.reg)
        return a.astype(np.float32)

    def _half_step(self, parts, x: np.ndarray, y: np.ndarray) -> None:
        from ..._numba import get_num_threads
        from ._implicit_kernels import solve_rows, wrmf_cg, wrmf_cg_serial

        indptr, indices, vals = parts
        a = self._gram(y)
        if self.cg_steps > 0 and get_num_threads() == 1:
            wrmf_cg_serial(indptr, indices, vals, np.float32(self.alpha), x, y, a, int(self.cg_steps))
        elif self.cg_steps > 0:
            wrmf_cg(indptr, indices, vals, np.float32(self.alpha), x, y, a, int(self.cg_steps),
                    balanced_chunks(indptr, n_chunks()))
        else:
            conf = self._confidence(vals)
            rows = np.arange(x.shape[0], dtype=np.int64)
            lam = np.zeros(len(rows), dtype=np.float32)
            solve_rows(indptr, indices, conf - np.float32(1.0), conf, y, a, lam, rows, x)

    def _solve_exact(self, parts, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact least-squares factors of ``rows`` given the fixed other side ``y``."""
        from ._implicit_kernels import solve_rows

        indptr, indices, vals = parts
        conf = self._confidence(vals)
        out = np.empty((len(rows), y.shape[1]), dtype=np.float32)
        if len(rows):
            lam = np.zeros(len(rows), dtype=np.float32)
            solve_rows(indptr, indices, conf - np.float32(1.0), conf, y, self._gram(y), lam,
                       np.asarray(rows, dtype=np.int64), out)
        return out

    # ------------------------------------------------------------ fold-in
    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows)
        vals = np.asarray(rows.data, dtype=np.float32)
        if vals.size and vals.min() < 0:
            raise DataError(f"{self.display_name}: interaction values must be non-negative")
        parts = (np.asarray(rows.indptr, np.int64), np.asarray(rows.indices, np.int32), vals)
        u = self._solve_exact(parts, np.arange(rows.shape[0]), self.item_factors_)
        return u @ self.item_factors_.T

    # ------------------------------------------------------------ incremental training
    def partial_fit(self, new: Interactions, *, duplicates: str = "sum") -> WRMF:
        """Add interactions without refitting everything.

        New users and items are appended to the vocabularies. The factors of the users
        and items that ``new`` touches are solved exactly with the other side fixed:
        users first, then items, then the users again. A record of a (user, item) pair
        already in the training data is merged by ``duplicates`` ("sum" adds values).
        """
        if not hasattr(self, "seen_"):
            raise NotFittedError(f"{self.display_name} is not fitted yet; call fit first")
        self._require_history("partial_fit")
        if not isinstance(new, Interactions):
            raise DataError(f"{self.display_name}.partial_fit expects Interactions, got {type(new).__name__}")
        if duplicates not in ("sum", "last", "max"):
            raise ParameterError(f"duplicates must be 'sum', 'last' or 'max', got {duplicates!r}")
        if new.nnz == 0:
            return self
        new_vals = implicit_values(new, self.display_name)
        users = self.users_.extend(new.users.ids)
        items = self.items_.extend(new.items.ids)
        nu, ni = len(users), len(items)
        # re-express old and new records on the grown vocabularies
        old_u = np.repeat(np.arange(self.n_users_, dtype=np.int64), np.diff(self.seen_.indptr))
        old_i = np.asarray(self.seen_.indices, dtype=np.int64)
        u_map = users.indices(new.users.ids)
        i_map = items.indices(new.items.ids)
        nu_idx = u_map[new.user_index()]
        ni_idx = i_map[np.asarray(new.matrix.indices, dtype=np.int64)]
        all_u = np.concatenate([old_u, nu_idx])
        all_i = np.concatenate([old_i, ni_idx])
        all_v = np.concatenate([self.values_, new_vals]).astype(np.float64)
        matrix, _, _ = build_csr(all_u, all_i, all_v, None, (nu, ni), duplicates)
        # grow the factors: new rows start at zero and are solved below
        d = self.user_factors_.shape[1]
        uf = np.zeros((nu, d), dtype=np.float32)
        uf[: self.n_users_] = self.user_factors_
        itf = np.zeros((ni, d), dtype=np.float32)
        itf[: self.n_items_] = self.item_factors_
        vals = np.asarray(matrix.data, dtype=np.float32)
        self._check_alpha(vals)
        ui, iu = csr_parts(matrix.indptr, matrix.indices, vals, (nu, ni))
        touched_u = np.unique(nu_idx)
        touched_i = np.unique(ni_idx)
        uf[touched_u] = self._solve_exact(ui, touched_u, itf)
        itf[touched_i] = self._solve_exact(iu, touched_i, uf)
        uf[touched_u] = self._solve_exact(ui, touched_u, itf)
        self._check_finite(0, uf, itf)
        self.user_factors_, self.item_factors_ = uf, itf
        self.users_, self.items_ = users, items
        self.n_users_, self.n_items_ = nu, ni
        self.values_ = vals
        self.seen_ = sp.csr_array((np.ones(matrix.nnz, dtype=np.float32), matrix.indices, matrix.indptr),
                                  shape=(nu, ni))
        return self
