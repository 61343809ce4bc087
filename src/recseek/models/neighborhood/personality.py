"""Personality Diagnosis: a probabilistic memory-based rating predictor."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float
from ..base import Array, RatingPredictor, Sparse, StateSpec
from ..registry import register


def _csr(m, dtype=np.float64) -> sp.csr_array:
    out = sp.csr_array(m, dtype=dtype)
    out.sort_indices()
    return out


@register
class PersonalityDiagnosis(RatingPredictor):
    """Personality Diagnosis.

    Every training user ``v`` is a candidate "personality" of the active user ``u``,
    with likelihood ``w_uv = prod_{j rated by both} exp(-(r_uj - r_vj)^2 / (2 sigma^2))``
    (1 when they share no item). The predicted rating of item ``i`` is the rating level
    ``x`` maximising ``sum_{v rated i} w_uv exp(-(x - r_vi)^2 / (2 sigma^2))``.
    Computed sparsely as ``w_uv = 1 + (w_uv - 1)`` where only co-rating pairs differ
    from 1.

    Pennock, Horvitz, Lawrence, Giles. Collaborative filtering by personality diagnosis:
    a hybrid memory- and model-based approach. UAI 2000.
    """

    name = "PersonalityDiagnosis"
    family = "neighborhood"
    paper = ("Pennock, Horvitz, Lawrence, Giles. Collaborative filtering by personality diagnosis: "
             "a hybrid memory- and model-based approach. UAI 2000")
    rules = {"sigma": Float(lo=0.0, lo_open=True)}
    state: ClassVar[dict[str, StateSpec]] = {
        "levels_": Array("float64", ("n_levels",)),
        "user_items_": Sparse(("n_users", "n_items"), "float64"),
        "level_sums_": Array("float64", ("n_levels", "n_items")),
    }

    def __init__(self, sigma: float = 2.0) -> None:
        self.sigma = sigma

    def _fit(self, train: Interactions) -> None:
        r = _csr(train.matrix)
        self.levels_ = np.unique(r.data).astype(np.float64)
        self.user_items_ = r
        # the user-user weights are computed at scoring time for the users asked for, as a
        # memory-based method does: training stays cheap and memory linear in the ratings
        # per level: column sums of the rating kernels (the contribution of weight 1)
        self.level_sums_ = np.stack([
            np.bincount(r.indices, weights=self._kernel(x, r.data), minlength=r.shape[1]) for x in self.levels_
        ])

    def _kernel(self, x: float, values: np.ndarray) -> np.ndarray:
        return np.exp(-((x - values) ** 2) / (2.0 * self.sigma**2))

    def _excess_weights(self, rows: sp.csr_array) -> sp.csr_array:
        """``w_uv - 1`` of ``rows`` against the training users (sparse: co-raters only)."""
        r = self.user_items_
        b = r.copy()
        b.data = np.ones_like(b.data)
        rb = rows.copy()
        rb.data = np.ones_like(rb.data)
        sq = rows.multiply(rows)
        d2 = _csr(sq @ b.T + rb @ r.multiply(r).T - 2.0 * (rows @ r.T))
        pattern = _csr(rb @ b.T)
        d2 = _csr(pattern.multiply(0.0) + d2)  # keep every co-rating pair, even at distance 0
        d2.data = np.expm1(-np.maximum(d2.data, 0.0) / (2.0 * self.sigma**2))
        d2.eliminate_zeros()
        return d2

    def _predict_from_weights(self, w: sp.csr_array, items: np.ndarray | None) -> np.ndarray:
        r = self.user_items_ if items is None else _csr(self.user_items_[:, items])
        sums = self.level_sums_ if items is None else self.level_sums_[:, items]
        best = np.full((w.shape[0], r.shape[1]), -np.inf)
        out = np.zeros((w.shape[0], r.shape[1]))
        for li, x in enumerate(self.levels_):
            k = r.copy()
            k.data = self._kernel(x, r.data)
            prob = sums[li][None, :] + np.asarray((w @ k).toarray())
            better = prob > best
            out[better] = x
            best[better] = prob[better]
        return out.astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._predict_from_weights(self._excess_weights(_csr(self.user_items_[users])), items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return self._predict_from_weights(self._excess_weights(_csr(rows)), None)
