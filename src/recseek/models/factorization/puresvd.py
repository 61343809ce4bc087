"""PureSVD: truncated SVD of the interaction matrix with missing entries as zeros."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import ParameterError
from .._params import Bool
from ..base import Array, Recommender, StateSpec
from ..registry import register


@register
class PureSVD(Recommender):
    """Truncated SVD ``X ~ U S V^T`` of the user-item matrix (missing entries = 0).

    Scores are ``x_u V V^T`` (equal to ``U S V^T`` for training users), which also folds
    in new users without refitting. ``binary=True`` uses 1 for every interaction.

    Cremonesi, Koren, Turrin. Performance of recommender algorithms on top-N
    recommendation tasks. RecSys 2010.
    """

    name = "PureSVD"
    family = "factorization"
    paper = "Cremonesi, Koren, Turrin. Performance of recommender algorithms on top-N recommendation tasks. RecSys 2010"
    rules = {"binary": Bool()}
    test_params = {"factors": 5}
    state: ClassVar[dict[str, StateSpec]] = {
        "singular_values_": Array("float32", ("rank",)),
        "item_factors_": Array("float32", ("n_items", "rank")),
        "user_factors_": Array("float32", ("n_users", "rank")),
    }

    def __init__(self, factors: int = 50, binary: bool = False, seed: int = 0) -> None:
        self.factors = factors
        self.binary = binary
        self.seed = seed

    def _rows(self, m: sp.csr_array) -> sp.csr_array:
        m = sp.csr_array(m, dtype=np.float64, copy=True)
        if self.binary:
            m.data = np.ones_like(m.data)
        return m

    def _fit(self, train: Interactions) -> None:
        from scipy.sparse.linalg import svds

        x = self._rows(train.matrix)
        limit = min(x.shape) - 1
        if self.factors > limit:
            raise ParameterError(f"PureSVD: factors must be below min(n_users, n_items) = {limit + 1}, got {self.factors}")
        rng = np.random.default_rng(self.seed)
        v0 = rng.standard_normal(min(x.shape))
        u, s, vt = svds(x, k=self.factors, v0=v0, solver="arpack")
        order = np.argsort(-s)
        u, s, vt = u[:, order], s[order], vt[order]
        # fix signs so results do not depend on the solver's arbitrary choice
        flip = np.sign(vt[np.arange(len(s)), np.abs(vt).argmax(axis=1)])
        flip[flip == 0] = 1.0
        u, vt = u * flip, vt * flip[:, None]
        self._check_finite(1, u, s, vt)
        self.singular_values_ = s.astype(np.float32)
        self.item_factors_ = np.ascontiguousarray(vt.T, dtype=np.float32)
        self.user_factors_ = np.ascontiguousarray(u * s, dtype=np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        q = self.item_factors_ if items is None else self.item_factors_[items]
        return self.user_factors_[users] @ q.T

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        p = np.asarray(self._rows(rows) @ self.item_factors_, dtype=np.float32)
        return p @ self.item_factors_.T

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_ * self.singular_values_

    def user_vectors(self) -> np.ndarray:
        return self.user_factors_
