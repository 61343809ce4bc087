"""Shared machinery of the SGD ranking factorization models (no numba at import time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Choice, Float, Int
from ..base import Array, Recommender, StateSpec

#: Rules shared by the models of this package.
COMMON_RULES: dict[str, Any] = {
    "init_std": Float(lo=0.0),
    "reg_bias": Float(lo=0.0),
    "samples_per_epoch": Int(lo=1, none_ok=True),
    "sampling": Choice(("interaction", "user")),
}


class FactorRanker(Recommender):
    """A ranking model scoring ``<user_factors[u], item_factors[i]> + item_bias[i]``.

    Learned state: ``user_factors_`` (n_users, factors), ``item_factors_`` (n_items,
    factors) and ``item_bias_`` (n_items,; zeros for models without biases), all float32.
    New users are folded in by BPR steps on the fixed item factors and biases.
    """

    family: ClassVar[str] = "ranking"
    task: ClassVar[str] = "ranking"
    #: Fold-in: BPR steps per interaction of the new user and their learning rate.
    fold_in_steps: ClassVar[int] = 150
    fold_in_learning_rate: ClassVar[float] = 0.05
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "item_bias_": Array("float32", ("n_items",)),
    }

    # ------------------------------------------------------------ helpers
    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def _init_factors(self, n_users: int, n_items: int, rng: np.random.Generator) -> None:
        std = float(self.init_std)
        k = int(self.factors)
        self.user_factors_ = (rng.standard_normal((n_users, k), dtype=np.float32) * std).astype(np.float32)
        self.item_factors_ = (rng.standard_normal((n_items, k), dtype=np.float32) * std).astype(np.float32)
        self.item_bias_ = np.zeros(n_items, dtype=np.float32)

    def _seen_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        m = self.seen_
        return np.asarray(m.indptr, dtype=np.int64), np.asarray(m.indices, dtype=np.int32)

    @staticmethod
    def _n_chunks(n_samples: int) -> int:
        """Independent random streams per epoch: one per 16,384 samples (at most 4,096).

        The count does not depend on the number of threads, and threads take chunks
        dynamically (see :func:`dynamic_schedule`), so a slow or busy core does not hold
        the others back at the end of an epoch.
        """
        return max(1, min(4096, -(-int(n_samples) // 16384)))

    def _check_epoch(self, epoch: int) -> None:
        self._check_finite(epoch, self.user_factors_, self.item_factors_, self.item_bias_)

    # ------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        U = self.user_factors_[users]
        V = self.item_factors_ if items is None else self.item_factors_[items]
        b = self.item_bias_ if items is None else self.item_bias_[items]
        out = U @ V.T
        out += b[None, :]
        return out.astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """Factors of new users from their interaction rows (n_new, n_items).

        BPR stochastic gradient steps (``fold_in_steps`` per interaction) on the fixed item
        factors and biases, starting from zero; deterministic for the model's seed.
        """
        from ._kernels import bpr_fold_in

        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        return bpr_fold_in(
            np.asarray(rows.indptr, dtype=np.int64), np.asarray(rows.indices, dtype=np.int32),
            self.item_factors_, self.item_bias_, True, int(self.item_factors_.shape[1]),
            int(self.fold_in_steps), np.float32(self.fold_in_learning_rate), np.float32(self.reg),
            int(self.seed or 0),
        )

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        U = self.fold_in(rows)
        return (U @ self.item_factors_.T + self.item_bias_[None, :]).astype(np.float32)


def active_users(train: Interactions) -> np.ndarray:
    return np.flatnonzero(np.diff(train.matrix.indptr) > 0).astype(np.int32)


@contextmanager
def dynamic_schedule(chunk: int = 1) -> Iterator[None]:
    """Let numba threads take ``chunk`` iterations of a ``prange`` at a time."""
    import numba

    old = numba.set_parallel_chunksize(chunk)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(old)
