"""EASE: a closed-form item-item linear autoencoder."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import ParameterError
from .._params import Bool, Float
from ..base import Array, Recommender, Sparse, StateSpec
from ..registry import register


def _rows(m: sp.csr_array, binary: bool) -> sp.csr_array:
    m = sp.csr_array(m, dtype=np.float32, copy=True)
    if binary:
        m.data = np.ones_like(m.data)
    return m


@register
class EASE(Recommender):
    """Embarrassingly Shallow AutoEncoder.

    The item-item weights minimise ``||X - X B||^2 + reg ||B||^2`` with ``diag(B) = 0``,
    solved in closed form: ``P = (X^T X + reg I)^-1``, ``B = -P / diag(P)`` (column-wise),
    ``diag(B) = 0``. Scores are ``x_u B``; new users are scored from their rows directly.
    The dense ``n_items x n_items`` matrix is the model, so memory is ``4 n_items^2``
    bytes (``max_items`` guards against accidental huge catalogues).

    Steck. Embarrassingly shallow autoencoders for sparse data. WWW 2019.
    """

    name = "EASE"
    family = "linear"
    paper = "Steck. Embarrassingly shallow autoencoders for sparse data. WWW 2019"
    rules = {"reg": Float(lo=0.0, lo_open=True), "binary": Bool()}
    test_params = {"reg": 10.0}
    state: ClassVar[dict[str, StateSpec]] = {
        "weights_": Array("float32", ("n_items", "n_items")),
        "user_items_": Sparse(("n_users", "n_items")),
    }

    def __init__(self, reg: float = 250.0, binary: bool = True, max_items: int = 50_000) -> None:
        self.reg = reg
        self.binary = binary
        self.max_items = max_items

    def _fit(self, train: Interactions) -> None:
        if train.n_items > self.max_items:
            raise ParameterError(
                f"EASE: {train.n_items} items need a dense {train.n_items}x{train.n_items} matrix;"
                f" raise max_items (now {self.max_items}) if memory allows"
            )
        x = _rows(train.matrix, self.binary)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.reg
        p = np.linalg.inv(gram)
        b = p / (-np.diag(p))[None, :]
        np.fill_diagonal(b, 0.0)
        self._check_finite(1, b)
        self.weights_ = b.astype(np.float32)
        self.user_items_ = x

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w = self.weights_ if items is None else self.weights_[:, items]
        return np.asarray(self.user_items_[users] @ w, dtype=np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return np.asarray(_rows(rows, self.binary) @ self.weights_, dtype=np.float32)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return self.weights_[items]
