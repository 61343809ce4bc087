"""UserCluster and ItemCluster: mixture models over rating values fitted by EM.

Each user (item) belongs softly to one of ``clusters`` groups; each group has a
distribution over the distinct rating values. The prediction for a pair is the
expected rating under the user's (item's) posterior group membership.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Int
from ..base import Array, RatingPredictor, StateSpec
from ..registry import register


def _value_counts(matrix: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rating values and the (rows x values) count matrix."""
    values, codes = np.unique(matrix.data, return_inverse=True)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    counts = np.zeros((matrix.shape[0], len(values)), dtype=np.float64)
    np.add.at(counts, (rows, codes), 1.0)
    return values.astype(np.float64), counts


def _fit_mixture(counts: np.ndarray, n_clusters: int, epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """EM for a mixture of multinomials over rating values.

    Returns ``(membership (rows x clusters), theta (clusters x values))``.
    """
    rng = np.random.default_rng(seed)
    n_values = counts.shape[1]
    theta = rng.random((n_clusters, n_values)) + 0.5
    theta /= theta.sum(axis=1, keepdims=True)
    prior = np.full(n_clusters, 1.0 / n_clusters)
    totals = counts.sum(axis=1)
    gamma = np.full((counts.shape[0], n_clusters), 1.0 / n_clusters)
    for _ in range(epochs):
        # E-step in log space
        logp = np.log(prior)[None, :] + counts @ np.log(theta).T
        logp -= logp.max(axis=1, keepdims=True)
        gamma = np.exp(logp)
        gamma /= gamma.sum(axis=1, keepdims=True)
        # rows without ratings follow the prior
        gamma[totals == 0] = prior
        # M-step (tiny additive smoothing keeps every probability positive)
        num = gamma.T @ counts + 1e-6
        theta = num / num.sum(axis=1, keepdims=True)
        prior = (gamma[totals > 0].sum(axis=0) + 1e-6) / (np.count_nonzero(totals) + 1e-6 * n_clusters)
    return gamma, theta


class _ClusterBase(RatingPredictor):
    family = "baseline"
    rules = {"clusters": Int(lo=1)}
    test_params = {"clusters": 3, "epochs": 5}

    def __init__(self, clusters: int = 10, epochs: int = 20, seed: int = 0) -> None:
        self.clusters = clusters
        self.epochs = epochs
        self.seed = seed

    def _expected(self, matrix: sp.csr_array) -> np.ndarray:
        values, counts = _value_counts(matrix)
        gamma, theta = _fit_mixture(counts, self.clusters, self.epochs, self.seed or 0)
        expected = (gamma @ (theta @ values)).astype(np.float32)
        self._check_finite(self.epochs, expected)
        return expected


@register
class UserCluster(_ClusterBase):
    """Users clustered by a mixture of rating-value distributions (EM); prediction =
    expected rating of the user's clusters.

    Ungar & Foster, "Clustering Methods for Collaborative Filtering", AAAI Workshop on
    Recommender Systems, 1998 (as in LibRec/JStarCraft's UserCluster).
    """

    name = "UserCluster"
    paper = "Ungar & Foster, Clustering Methods for Collaborative Filtering, AAAI Workshop 1998"
    state: ClassVar[dict[str, StateSpec]] = {
        "user_expected_": Array("float32", ("n_users",)),
    }

    def _fit(self, train: Interactions) -> None:
        self.user_expected_ = self._expected(train.matrix)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        n = self.n_items_ if items is None else len(items)
        return np.repeat(self.user_expected_[users, None], n, axis=1)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.user_expected_[users]


@register
class ItemCluster(_ClusterBase):
    """Items clustered by a mixture of rating-value distributions (EM); prediction =
    expected rating of the item's clusters.

    Ungar & Foster, "Clustering Methods for Collaborative Filtering", AAAI Workshop on
    Recommender Systems, 1998 (as in LibRec/JStarCraft's ItemCluster).
    """

    name = "ItemCluster"
    paper = "Ungar & Foster, Clustering Methods for Collaborative Filtering, AAAI Workshop 1998"
    state: ClassVar[dict[str, StateSpec]] = {
        "item_expected_": Array("float32", ("n_items",)),
    }

    def _fit(self, train: Interactions) -> None:
        self.item_expected_ = self._expected(sp.csr_array(train.matrix.T))

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        row = self.item_expected_ if items is None else self.item_expected_[items]
        return np.broadcast_to(row, (len(users), len(row))).copy()

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_expected_[items]

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return np.broadcast_to(self.item_expected_, (rows.shape[0], self.n_items_)).copy()
