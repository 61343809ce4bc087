"""Shared scoring, prediction and fold-in for rating models with latent factors.

A :class:`LatentRatingModel` predicts ``global_bias_ + user_bias_[u] + item_bias_[i] +
user_factors_[u] . item_factors_[i]``. Models without biases keep zero bias arrays, so
one scoring path (a BLAS product per user block) serves every factorization model.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ..base import Array, RatingPredictor, Scalar, StateSpec


def training_arrays(train: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user_idx int32, item_idx int32, rating float32)`` of every training record."""
    m = train.matrix
    users = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(m.indptr))
    return users, m.indices.astype(np.int32), m.data.astype(np.float32)


def transpose_csr(train: Interactions) -> sp.csr_array:
    """Items x users CSR of the training ratings (sorted indices)."""
    t = sp.csr_array(train.matrix.T.tocsr())
    t.sort_indices()
    return t


def init_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float, mean: float = 0.0) -> np.ndarray:
    return (mean + std * rng.standard_normal(shape)).astype(np.float32)


class LatentRatingModel(RatingPredictor):
    """Base of rating factorization models: biased dot-product scoring and fold-in.

    Subclasses fill ``user_factors_`` (n_users, d), ``item_factors_`` (n_items, d),
    ``user_bias_`` (n_users,), ``item_bias_`` (n_items,) and ``global_bias_`` in ``_fit``.
    Fold-in (:meth:`_score_new`) solves a new user's bias and factors by ridge
    regression on the fixed item side, with ridge weight :attr:`fold_in_reg`.
    """

    family: ClassVar[str] = "factorization"
    #: Whether fold-in estimates a user bias too (models with biases).
    fold_in_bias: ClassVar[bool] = True
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "user_bias_": Array("float32", ("n_users",)),
        "item_bias_": Array("float32", ("n_items",)),
        "global_bias_": Scalar(float),
    }

    # ------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        q = self.item_factors_ if items is None else self.item_factors_[items]
        bi = self.item_bias_ if items is None else self.item_bias_[items]
        out = self.user_factors_[users] @ q.T
        out += (self.user_bias_[users] + np.float32(self.global_bias_))[:, None]
        out += bi[None, :]
        return out.astype(np.float32, copy=False)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dots = np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items])
        return (dots + self.user_bias_[users] + self.item_bias_[items] + self.global_bias_).astype(np.float32)

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Unknown pairs: global bias plus whichever known bias applies."""
        out = np.full(len(users), self.global_mean_, dtype=np.float32)
        if not np.any(self.user_bias_) and not np.any(self.item_bias_):
            return out
        out[:] = self.global_bias_
        ku = (users >= 0) & (users < self.n_users_)
        ki = (items >= 0) & (items < self.n_items_)
        out[ku] += self.user_bias_[users[ku]]
        out[ki] += self.item_bias_[items[ki]]
        return out

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    # ------------------------------------------------------------ fold-in
    @property
    def fold_in_reg(self) -> float:
        """Ridge weight used when folding in a new user (defaults to the model's reg)."""
        return float(max(getattr(self, "reg", 0.05), 1e-3))

    def fold_in(self, rows: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
        """Bias (n_new,) and factors (n_new, d) of new users from their rating rows."""
        from ._foldin import ridge_fold_in

        rows = sp.csr_array(rows)
        rows.sort_indices()
        q = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        offset = (np.float32(self.global_bias_) + self.item_bias_).astype(np.float32)
        return ridge_fold_in(
            rows.indptr.astype(np.int64), rows.indices.astype(np.int64), rows.data.astype(np.float32),
            q, offset, np.float32(self.fold_in_reg), bool(self.fold_in_bias),
        )

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        bias, factors = self.fold_in(rows)
        out = factors @ self.item_factors_.T
        out += (bias + np.float32(self.global_bias_))[:, None]
        out += self.item_bias_[None, :]
        return out.astype(np.float32, copy=False)

    def _finish(self, user_factors: np.ndarray, item_factors: np.ndarray, user_bias: np.ndarray | None = None,
                item_bias: np.ndarray | None = None, global_bias: float = 0.0) -> None:
        """Store learned state with the standard names and dtypes.

        Users and items without training ratings get zero factors and biases, so they are
        predicted from the global bias and the other side's bias.
        """
        seen = self.seen_
        cold_users = np.diff(seen.indptr) == 0
        cold_items = np.bincount(seen.indices, minlength=self.n_items_) == 0
        user_factors = np.array(user_factors, dtype=np.float32)
        item_factors = np.array(item_factors, dtype=np.float32)
        user_factors[cold_users] = 0.0
        item_factors[cold_items] = 0.0
        if user_bias is not None:
            user_bias = np.where(cold_users, 0.0, user_bias)
        if item_bias is not None:
            item_bias = np.where(cold_items, 0.0, item_bias)
        self.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        self.user_bias_ = (np.zeros(self.n_users_, np.float32) if user_bias is None
                           else np.asarray(user_bias, dtype=np.float32))
        self.item_bias_ = (np.zeros(self.n_items_, np.float32) if item_bias is None
                           else np.asarray(item_bias, dtype=np.float32))
        self.global_bias_ = float(global_bias)
