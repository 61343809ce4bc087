"""Shared machinery of the aspect and topic ranking models (no numba at import time)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Bool, Float, Int
from ..base import Array, Recommender, StateSpec

#: Rules shared by the topic models.
TOPIC_RULES: dict[str, Any] = {
    "factors": Int(lo=1),
    "epochs": Int(lo=1),
    "binary": Bool(),
    "fold_in_steps": Int(lo=1),
    "alpha": Float(lo=0.0, lo_open=True),
    "beta": Float(lo=0.0, lo_open=True),
    "burn_in": Int(lo=0),
    "sample_lag": Int(lo=1),
}

#: Tokens per chunk of users in a Gibbs sweep: smaller data is swept as one chunk (exact
#: collapsed Gibbs); larger data in chunks of about this many tokens (see the kernels).
GIBBS_CHUNK_TOKENS = 200_000


#: Largest number of (pair, topic) responsibilities an EM step keeps in memory between its
#: user and item passes (float64); above it the item pass computes them again.
EM_STORE_LIMIT = 32_000_000


def item_groups(matrix: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of ``matrix`` grouped by item: ``(item_ptr, csr_position, user)``."""
    n_users, n_items = matrix.shape
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(matrix.indptr))
    order = np.argsort(matrix.indices, kind="stable").astype(np.int64)
    ptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(np.bincount(matrix.indices, minlength=n_items), out=ptr[1:])
    return ptr, order, users[order]


def em_step(indptr, indices, weights, A, B, mu=None, sigma=None, *, per_item=False, temper=1.0,
            groups=()) -> tuple[np.ndarray, ...]:
    """One E-step with the M-step's sums (:func:`~._topic_kernels.em_pass`); Gaussian
    ratings when ``mu``/``sigma`` are given."""
    from ._topic_kernels import em_pass

    k = A.shape[1]
    n = len(indices)
    # the responsibilities are kept between the two passes unless they would be large
    qbuf = np.empty((n, k) if n * k <= EM_STORE_LIMIT else (1, k), dtype=np.float64)
    if mu is None:
        one = np.ones((1, k), dtype=np.float64)
        return em_pass(indptr, indices, weights, A, B, one, one, one, one, one, False, False, float(temper), *groups,
                       qbuf)
    with np.errstate(divide="ignore"):
        la, lb, ls = np.log(A), np.log(B), np.log(sigma)
    return em_pass(indptr, indices, weights, A, B, la, lb, mu, sigma, ls, bool(per_item), True, float(temper),
                   *groups, qbuf)


def random_simplex(rng: np.random.Generator, shape: tuple[int, int], axis: int) -> np.ndarray:
    """Random positive probabilities normalised along ``axis`` (float64)."""
    a = rng.random(shape) + 0.5
    return a / a.sum(axis=axis, keepdims=True)


class EpochBar:
    """Iterates over epochs; with ``verbose`` a progress bar shows ``what`` after each."""

    def __init__(self, model: Recommender, epochs: int, what: str) -> None:
        self.epochs = int(epochs)
        self.what = what
        self.bar = None
        if getattr(model, "verbose", False):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.epochs, desc=model.display_name, leave=False)

    def __iter__(self):
        yield from range(self.epochs)
        if self.bar is not None:
            self.bar.close()

    def report(self, value: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix({self.what: f"{value:.5g}"})
            self.bar.update(1)


def training_weights(train: Interactions, weights: np.ndarray) -> np.ndarray:
    """The (2, nnz) float64 array the EM kernel reads: pair weights and values."""
    return np.ascontiguousarray(np.vstack([weights, np.asarray(train.matrix.data, dtype=np.float64)]))


class TopicRanker(Recommender):
    """A ranking model scoring ``user_topic_[u] . item_topic_[i]``.

    ``user_topic_`` (n_users, factors) holds each user's topic weights and
    ``item_topic_`` (n_items, factors) the item's probability under each topic
    (``item_topic_[:, z]`` sums to one over items). New users are folded in by EM on
    their items with ``item_topic_`` fixed (:meth:`fold_in`); similar items compare the
    topic memberships ``P(z | i)``.
    """

    family: ClassVar[str] = "probabilistic"
    task: ClassVar[str] = "ranking"
    divergence_hint: ClassVar[str] = "use fewer factors or check the training values"
    state: ClassVar[dict[str, StateSpec]] = {
        "user_topic_": Array("float32", ("n_users", "factors")),
        "item_topic_": Array("float32", ("n_items", "factors")),
        "topic_prior_": Array("float32", ("factors",)),
        "loglik_": Array("float64", ("epochs",), finite=False, history=True),
    }

    # ------------------------------------------------------------ helpers
    def _epoch_bar(self, epochs: int, what: str = "log-likelihood") -> EpochBar:
        return EpochBar(self, epochs, what)

    def _weights(self, train: Interactions) -> np.ndarray:
        """Per-pair weights: 1 when ``binary`` (or the model has no such option), else the value."""
        data = np.asarray(train.matrix.data, dtype=np.float64)
        if getattr(self, "binary", True):
            return np.ones_like(data)
        if (data < 0).any():
            raise DataError(f"{self.display_name}: with binary=False the training values must be non-negative")
        return data

    def _check_probabilities(self, epoch: int, *arrays: np.ndarray) -> None:
        """Raise one TrainingError naming the epoch for NaN, infinite or negative probabilities."""
        self._check_finite(epoch, *arrays)
        for a in arrays:
            if (np.asarray(a) < 0).any():
                from ...errors import TrainingError

                raise TrainingError(f"{self.display_name}: training diverged at epoch {epoch} "
                                    f"(a negative probability); {self.divergence_hint}")

    # ------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        U = self.user_topic_[users]
        V = self.item_topic_ if items is None else self.item_topic_[items]
        return (U @ V.T).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        """Topic memberships ``P(z | i)`` of every item (rows sum to one; zeros for items
        without training interactions)."""
        self._check_fitted()
        m = self.item_topic_.astype(np.float64) * self.topic_prior_[None, :]
        s = m.sum(axis=1, keepdims=True)
        s[s == 0] = 1.0
        return (m / s).astype(np.float32)

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        m = self.user_topic_.astype(np.float64)
        s = m.sum(axis=1, keepdims=True)
        s[s == 0] = 1.0
        return (m / s).astype(np.float32)

    # ------------------------------------------------------------ new users
    def _fold_in_prior(self) -> np.ndarray:
        """Pseudo-counts of the fold-in EM (zero: maximum likelihood)."""
        return np.zeros(self.item_topic_.shape[1], dtype=np.float64)

    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """Topic mixtures (n_new, factors) of new users from their interaction rows.

        EM on each row with ``item_topic_`` fixed (``fold_in_steps`` rounds); the values
        are weights when the model is trained on values (``binary=False``), else ones.
        """
        from ._topic_kernels import fold_in_em

        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        data = np.asarray(rows.data, dtype=np.float64)
        if getattr(self, "binary", True):
            data = np.ones_like(data)
        return fold_in_em(np.asarray(rows.indptr, dtype=np.int64), np.asarray(rows.indices, dtype=np.int64), data,
                          np.ascontiguousarray(self.item_topic_, dtype=np.float64), self._fold_in_prior(),
                          int(getattr(self, "fold_in_steps", 50)))

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        theta = self.fold_in(rows)
        return (theta @ self.item_topic_.T).astype(np.float32)
