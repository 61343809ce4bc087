"""Models built from item co-occurrence statistics: Slope One and association rules."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Bool, Int
from ..base import RatingPredictor, Recommender, Sparse, StateSpec
from ..registry import register


def _csr(m, dtype=np.float32) -> sp.csr_array:
    out = sp.csr_array(m, dtype=dtype)
    out.sort_indices()
    return out


def _binary(m: sp.csr_array) -> sp.csr_array:
    b = sp.csr_array(m, dtype=np.float32, copy=True)
    b.data = np.ones_like(b.data)
    return b


def _drop_diagonal(m: sp.csr_array) -> sp.csr_array:
    m = sp.coo_array(m)
    keep = m.row != m.col
    return _csr(sp.coo_array((m.data[keep], (m.row[keep], m.col[keep])), shape=m.shape), m.data.dtype)


@register
class SlopeOne(RatingPredictor):
    """Weighted Slope One rating prediction.

    ``r_ui = sum_j c_ij (dev_ij + r_uj) / sum_j c_ij`` over the items ``j`` rated by
    ``u``, where ``c_ij`` counts the users who rated both items and ``dev_ij`` is their
    mean difference ``r_vi - r_vj``. Computed with sparse products:
    ``(B N^T + R C) / (B C)`` with ``N = R^T B - B^T R`` and ``C = B^T B``.

    Lemire, Maclachlan. Slope One predictors for online rating-based collaborative
    filtering. SDM 2005.
    """

    name = "SlopeOne"
    family = "neighborhood"
    paper = "Lemire, Maclachlan. Slope One predictors for online rating-based collaborative filtering. SDM 2005"
    state: ClassVar[dict[str, StateSpec]] = {
        "deviations_": Sparse(("n_items", "n_items"), "float64"),
        "counts_": Sparse(("n_items", "n_items"), "float64"),
        "user_items_": Sparse(("n_users", "n_items"), "float64"),
    }

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        r = _csr(train.matrix, np.float64)
        b = _binary(r).astype(np.float64)
        p = _csr(r.T @ b, np.float64)
        self.deviations_ = _drop_diagonal(_csr(p - p.T, np.float64))
        self.counts_ = _drop_diagonal(_csr(b.T @ b, np.float64))
        self.user_items_ = r

    def _predict_rows(self, r: sp.csr_array, items: np.ndarray | None) -> np.ndarray:
        b = _binary(r).astype(np.float64)
        n_t = self.deviations_.T if items is None else self.deviations_[items].T
        c = self.counts_ if items is None else self.counts_[:, items]
        num = np.asarray((b @ n_t + r @ c).toarray())
        den = np.asarray((b @ c).toarray())
        out = np.full(num.shape, np.nan)
        np.divide(num, den, out=out, where=den > 0)
        return out.astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._predict_rows(self.user_items_[users], items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        out = self._predict_rows(_csr(rows, np.float64), None)
        return np.where(np.isnan(out), self.global_mean_, out).astype(np.float32)


@register
class AssociationRule(Recommender):
    """Top-N recommendation from pairwise association rules ``j => i``.

    The confidence of ``j => i`` is ``count(i, j) / (count(j) + shrinkage)`` (users as
    transactions; ``shrinkage`` = 0 gives the classical confidence);
    ``score(u, i) = sum_{j in I(u)} x_uj conf(j => i)``. ``neighbors`` keeps only the
    strongest rules of each antecedent (all when ``None``); ``binary=False`` weights
    the antecedents by the user's rating values.

    Lin, Alvarez, Ruiz. Efficient adaptive-support association rule mining for
    recommender systems. Data Mining and Knowledge Discovery 6(1), 2002.
    """

    name = "AssociationRule"
    family = "neighborhood"
    paper = ("Lin, Alvarez, Ruiz. Efficient adaptive-support association rule mining for recommender "
             "systems. Data Mining and Knowledge Discovery 2002")
    rules = {"neighbors": Int(lo=1, none_ok=True), "binary": Bool()}
    state: ClassVar[dict[str, StateSpec]] = {
        "confidence_": Sparse(("n_items", "n_items")),
        "user_items_": Sparse(("n_users", "n_items")),
    }

    def __init__(self, neighbors: int | None = None, shrinkage: float = 0.0, binary: bool = True) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.binary = binary

    def _rows(self, m: sp.csr_array) -> sp.csr_array:
        return _binary(m) if self.binary else _csr(m)

    def _fit(self, train: Interactions) -> None:
        from ._similarity import pairwise_topk

        b = _binary(train.matrix)
        self.confidence_ = pairwise_topk(_csr(b.T), "conditional", self.neighbors, self.shrinkage)
        self.user_items_ = self._rows(train.matrix)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w = self.confidence_ if items is None else self.confidence_[:, items]
        return np.asarray((self.user_items_[users] @ w).toarray(), dtype=np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return np.asarray((self._rows(rows) @ self.confidence_).toarray(), dtype=np.float32)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.confidence_[items].toarray(), dtype=np.float32)
