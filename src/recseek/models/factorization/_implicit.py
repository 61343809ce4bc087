"""Shared parts of the ALS-family models: factor storage, BLAS scoring, data layout."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import DataError, ParameterError
from ..base import Array, Recommender, StateSpec

#: Below this much work per sweep (stored interactions x factors), kernels run on one
#: thread: starting and joining threads would cost more than the sweep itself.
SERIAL_WORK = 4_000_000


class FactorModel(Recommender):
    """A model scoring ``user_factors_ @ item_factors_.T`` (float32, BLAS per block)."""

    family = "factorization"
    divergence_hint = "raise reg, or lower alpha where the model has one"
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
    }

    def fit(self, train: Interactions):  # noqa: D102 - see Recommender.fit
        nnz = train.nnz if isinstance(train, Interactions) else 0
        if nnz * int(getattr(self, "factors", 1) or 1) >= SERIAL_WORK:
            return super().fit(train)
        from ..._numba import get_num_threads, set_num_threads

        threads = get_num_threads()
        set_num_threads(1)
        try:
            return super().fit(train)
        finally:
            set_num_threads(threads)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        u = self.user_factors_[users]
        v = self.item_factors_ if items is None else self.item_factors_[items]
        return u @ v.T

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def _init_factors(self, n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
        return (rng.standard_normal((n, int(self.factors)), dtype=np.float32) * np.float32(scale))


def implicit_values(train: Interactions, model: str) -> np.ndarray:
    """The stored values of ``train`` as float32, checked to be finite and non-negative."""
    vals = np.asarray(train.matrix.data, dtype=np.float32)
    if vals.size and (vals.min() < 0):
        raise DataError(f"{model}: interaction values must be non-negative (found {float(vals.min())})")
    return vals


def confidence_weights(values: np.ndarray, alpha: float, model: str) -> np.ndarray:
    """``1 + alpha * values`` as float32; an overflow is reported naming ``alpha``."""
    with np.errstate(over="ignore"):
        c = (1.0 + float(alpha) * np.asarray(values, dtype=np.float64)).astype(np.float32)
    if c.size and not np.isfinite(c).all():
        raise ParameterError(f"{model}: alpha={alpha!r} makes the confidence 1 + alpha * value overflow float32")
    return c


def csr_parts(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, shape: tuple[int, int]):
    """``(indptr int64, indices int32, data float32)`` of a CSR structure and of its transpose.

    The transpose is built with 32-bit indices (when the matrix fits) so that no 64-bit
    copy of the indices is ever made.
    """
    small = int(indptr[-1]) < np.iinfo(np.int32).max
    ptr_dtype = np.int32 if small else np.int64
    m = sp.csr_array((np.asarray(data, np.float32), np.asarray(indices, ptr_dtype),
                      np.asarray(indptr, ptr_dtype)), shape=shape)
    t = m.T.tocsr()
    t.sort_indices()
    return (
        (np.asarray(indptr, np.int64), np.asarray(indices, np.int32), np.asarray(data, np.float32)),
        (np.asarray(t.indptr, np.int64), np.asarray(t.indices, np.int32), np.asarray(t.data, np.float32)),
    )


def n_chunks() -> int:
    """Chunks of rows per kernel call: several per thread so that uneven rows balance out."""
    from ..._numba import get_num_threads

    return 8 * get_num_threads()


def max_row(indptr: np.ndarray) -> int:
    return int(np.diff(indptr).max()) if indptr.shape[0] > 1 else 0


def balanced_chunks(indptr: np.ndarray, n_chunks: int, row_cost: int = 16) -> np.ndarray:
    """Boundaries (int64, length <= n_chunks + 1) of row chunks of about equal work.

    The work of a row is its number of stored entries plus ``row_cost``.
    """
    n = indptr.shape[0] - 1
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    cost = np.asarray(indptr, dtype=np.int64) + row_cost * np.arange(n + 1, dtype=np.int64)
    targets = np.linspace(0, cost[-1], max(1, n_chunks) + 1)
    bounds = np.searchsorted(cost, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, n
    return np.unique(bounds)


def gram(y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """``y^T diag(w) y`` in float64 (``w`` defaults to ones), computed by a numba kernel."""
    from ..._numba import get_num_threads
    from ._implicit_kernels import weighted_gram, weighted_gram_serial

    n = y.shape[0]
    w = np.ones(n, dtype=np.float32) if w is None else np.asarray(w, dtype=np.float32)
    if get_num_threads() == 1:
        return weighted_gram_serial(np.ascontiguousarray(y, dtype=np.float32), w)
    bounds = np.unique(np.linspace(0, n, n_chunks() + 1).astype(np.int64))
    return weighted_gram(np.ascontiguousarray(y, dtype=np.float32), w, bounds)
