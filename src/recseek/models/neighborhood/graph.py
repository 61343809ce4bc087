"""Random-walk item-item models on the user-item bipartite graph."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Bool, Float
from ..base import Recommender, Sparse, StateSpec
from ..registry import register


def _binary(m: sp.csr_array) -> sp.csr_array:
    m = sp.csr_array(m, dtype=np.float32, copy=True)
    m.data = np.ones_like(m.data)
    m.sort_indices()
    return m


def _row_normalise(m: sp.csr_array, power: float) -> sp.csr_array:
    deg = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg, dtype=np.float64), where=deg > 0)
    out = m.copy()
    out.data = ((m.data * np.repeat(inv, np.diff(m.indptr))) ** power).astype(np.float32)
    return out


@register
class RP3beta(Recommender):
    """Three-step random walk item -> user -> item with a popularity penalty.

    ``W_ij = sum_u P(u | i)^alpha P(j | u)^alpha / pop_j^beta`` where the transition
    probabilities come from the row-normalised item-user and user-item graphs and
    ``pop_j`` is item ``j``'s degree; each row keeps its ``neighbors`` largest entries
    (optionally re-normalised to sum to 1). Scores are ``x_u W``.

    Paudel, Christoffel, Newell, Bernstein. Updatable, accurate, diverse, and scalable
    recommendations for interactive applications. ACM TiiS 7(1), 2017.
    """

    name = "RP3beta"
    family = "neighborhood"
    paper = ("Paudel, Christoffel, Newell, Bernstein. Updatable, accurate, diverse, and scalable "
             "recommendations for interactive applications. ACM TiiS 2017")
    rules = {"alpha": Float(lo=0.0, lo_open=True), "beta": Float(lo=0.0), "normalize": Bool()}
    test_params = {"neighbors": 10}
    state: ClassVar[dict[str, StateSpec]] = {
        "similarity_": Sparse(("n_items", "n_items")),
        "user_items_": Sparse(("n_users", "n_items")),
    }

    def __init__(self, neighbors: int = 100, alpha: float = 1.0, beta: float = 0.5, normalize: bool = False) -> None:
        self.neighbors = neighbors
        self.alpha = alpha
        self.beta = beta
        self.normalize = normalize

    def _fit(self, train: Interactions) -> None:
        from ._similarity import pairwise_topk

        x = _binary(train.matrix)
        xt = sp.csr_array(x.T)
        xt.sort_indices()
        p_iu = _row_normalise(xt, self.alpha)
        p_ui = _row_normalise(x, self.alpha)
        pop = np.diff(xt.indptr).astype(np.float64)
        penalty = np.divide(1.0, pop ** self.beta, out=np.zeros_like(pop), where=pop > 0)
        right = p_ui.copy()
        right.data = (right.data * penalty[right.indices]).astype(np.float32)
        w = pairwise_topk(p_iu, "dot", self.neighbors, 0.0, right=right)
        if self.normalize:
            w = _row_normalise(w, 1.0)
        self.similarity_ = w
        self.user_items_ = x

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w = self.similarity_ if items is None else self.similarity_[:, items]
        return np.asarray((self.user_items_[users] @ w).toarray(), dtype=np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return np.asarray((_binary(rows) @ self.similarity_).toarray(), dtype=np.float32)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity_[items].toarray(), dtype=np.float32)
