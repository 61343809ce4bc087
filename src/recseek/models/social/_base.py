"""Shared machinery of the social models: the trust graph, logistic rating maps, batch
gradient passes and the social cold start (recommendations from trust links alone)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError, ParameterError
from .._topk import Ranking, topk
from ..base import Array, RatingPredictor, Scalar, StateSpec, check_k

#: Item-gradient slices of a batch pass (fixed, so results do not depend on the threads).
GRADIENT_CHUNKS = 4


def trust_matrix(model: str, train: Interactions) -> sp.csr_array:
    """The training trust graph as float32 CSR (n_users, n_users) with values in [0, 1].

    Self-links are dropped and values are divided by the largest one (FilmTrust's are all
    1). DataError when the data has no trust graph or a negative / non-finite value.
    """
    t = train.trust
    if t is None:
        raise DataError(f"{model} needs a trust graph: the training data has none (Interactions.trust)")
    t = sp.csr_array(t, dtype=np.float32)
    if t.shape != (train.n_users, train.n_users):
        raise DataError(f"{model}: the trust graph has shape {t.shape}, expected {(train.n_users, train.n_users)}")
    t = sp.csr_array(t - sp.diags_array(t.diagonal(), format="csr"))
    t.eliminate_zeros()
    t.sum_duplicates()
    t.sort_indices()
    if t.nnz and (not np.all(np.isfinite(t.data)) or t.data.min() < 0):
        raise DataError(f"{model}: trust values must be finite and non-negative")
    if t.nnz:
        t.data /= t.data.max()
    return sp.csr_array((t.data.astype(np.float32), t.indices.astype(np.int32), t.indptr.astype(np.int64)),
                        shape=t.shape)


def row_normalised(t: sp.csr_array) -> sp.csr_array:
    """Rows of ``t`` divided by their sums (empty rows stay empty)."""
    sums = np.asarray(t.sum(axis=1)).ravel()
    inv = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    out = sp.csr_array(sp.diags_array(inv.astype(np.float32)) @ t)
    out.sort_indices()
    return out


def fit_links(rows: sp.csr_array, start: np.ndarray, other: np.ndarray, reg: float, learning_rate: float,
              steps: int = 200) -> np.ndarray:
    """Vectors ``x`` (one per row) with ``g(x . other_v) ~ t_v`` over each row's links.

    Gradient descent on ``1/2 mean_v (g(x . other_v) - t_v)^2 + reg/2 |x|^2`` from
    ``start``, over the stored links only (sparse rows of trust values).
    """
    counts = np.diff(rows.indptr)
    owner = np.repeat(np.arange(rows.shape[0]), counts)
    o = np.asarray(other[rows.indices], dtype=np.float32)
    t = np.asarray(rows.data, dtype=np.float32)
    inv = (1.0 / np.maximum(counts, 1)).astype(np.float32)[:, None]
    x = np.array(start, dtype=np.float32)
    lr = np.float32(learning_rate)
    for _ in range(steps):
        p = sigmoid(np.einsum("ij,ij->i", x[owner], o))
        d = ((p - t) * p * (1.0 - p)).astype(np.float32)
        g = np.zeros_like(x)
        np.add.at(g, owner, d[:, None] * o)
        x -= lr * (g * inv + np.float32(reg) * x)
    return x


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))).astype(np.float32)


def trust_rows(trusted: Any, values: Any, n_users: int) -> sp.csr_array:
    """CSR rows (one per new user, n_users columns) from trusted-user index arrays."""
    if isinstance(trusted, np.ndarray) and trusted.ndim == 1 or (
        isinstance(trusted, list | tuple) and (not trusted or np.isscalar(trusted[0]))
    ):
        trusted = [np.asarray(trusted, dtype=np.int64)]
        values = None if values is None else [np.asarray(values)]
    trusted = [np.atleast_1d(np.asarray(x, dtype=np.int64)) for x in trusted]
    vals = ([np.ones(len(x), np.float32) for x in trusted] if values is None
            else [np.atleast_1d(np.asarray(v, dtype=np.float32)) for v in values])
    if len(vals) != len(trusted):
        raise ParameterError("values: one array per new user is needed")
    for x, v in zip(trusted, vals, strict=True):
        if len(x) != len(v):
            raise ParameterError("each new user's trusted users and trust values must have the same length")
        if len(x) and (x.min() < 0 or x.max() >= n_users):
            raise DataError(f"trusted user index out of range (valid: 0..{n_users - 1})")
        if len(v) and (not np.all(np.isfinite(v)) or v.min() < 0):
            raise DataError("trust values must be finite and non-negative")
    r = np.repeat(np.arange(len(trusted)), [len(x) for x in trusted])
    c = np.concatenate(trusted) if trusted else np.zeros(0, np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0, np.float32)
    m = sp.csr_array((v, (r, c)), shape=(len(trusted), n_users))
    m.sum_duplicates()
    m.sort_indices()
    return m


class EpochBar:
    """A progress bar over a model's epochs showing the training loss (when ``verbose``)."""

    def __init__(self, model: Any, epochs: int) -> None:
        self.bar = None
        if getattr(model, "verbose", False):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=epochs, desc=model.display_name, leave=False)

    def update(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.5g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TrustColdStart:
    """Recommendations for users outside the training data from their trust links.

    A model implements :meth:`_trust_vectors` (the new users' factors, from the rows of
    trusted users) and :meth:`_score_vectors` (scores of user vectors for items).
    """

    def _trust_vectors(self, rows: sp.csr_array) -> np.ndarray:
        """Default fold-in: the trust-weighted mean of the trusted users' factors."""
        return np.asarray(row_normalised(rows) @ self.user_factors_, dtype=np.float32)

    def score_for_trust(self, trusted: Any, values: Any = None, items: np.ndarray | None = None) -> np.ndarray:
        """Scores (n_new, n_items or len(items)) of new users known only by whom they trust.

        Parameters
        ----------
        trusted : int array, or list of int arrays
            Indices of the (training) users each new user trusts.
        values : float array(s), optional
            Trust values (default 1).
        items : int array, optional
            Score only these items.

        A new user without any trust link gets a row of NaN.
        """
        self._check_fitted()
        rows = trust_rows(trusted, values, self.n_users_)
        vectors = self._trust_vectors(rows)
        if items is not None:
            items = np.atleast_1d(np.asarray(items, dtype=np.int64))
            if len(items) and (items.min() < 0 or items.max() >= self.n_items_):
                raise DataError(f"item index out of range (valid: 0..{self.n_items_ - 1})")
        out = np.asarray(self._score_vectors(vectors, items), dtype=np.float32)
        out[np.diff(rows.indptr) == 0] = np.nan
        return out

    def recommend_for_trust(self, trusted: Any, k: int = 10, values: Any = None) -> Ranking:
        """Top-``k`` items for new users with trust links but no ratings (social cold start).

        ``trusted`` and ``values`` as in :meth:`score_for_trust`; users without any link
        get a row of ``-1`` ids.
        """
        k = check_k(k, "k")
        return topk(self.score_for_trust(trusted, values), k)


class SocialRatingModel(TrustColdStart, RatingPredictor):
    """A social rating model predicting ``g(u_u . v_i)`` mapped onto the rating range.

    With ``logistic`` (SoRec, SocialMF, TrustMF, RSTE) ratings are mapped to [0, 1] by
    ``(r - r_min) / (r_max - r_min)`` for training and predictions are
    ``r_min + sigmoid(u . v) (r_max - r_min)``; otherwise (SoReg) the prediction is
    ``mu + u . v`` with ``mu`` the training mean.
    """

    family: ClassVar[str] = "social"
    requires: ClassVar[tuple[str, ...]] = ("trust",)
    logistic: ClassVar[bool] = True
    divergence_hint = "lower learning_rate"
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "loss_": Scalar(float, finite=False),
    }

    # ------------------------------------------------------------ training helpers
    def _prepare(self, train: Interactions) -> tuple[sp.csr_array, np.ndarray, sp.csr_array, np.random.Generator]:
        """``(ratings csr, training targets, trust csr, rng)``; marks users with trust links
        but no ratings as predictable (their factors are learned from the graph)."""
        trust = trust_matrix(self.display_name, train)
        r = sp.csr_array(train.matrix, dtype=np.float32)
        r.sort_indices()
        if self.logistic:
            span = max(self.rating_max_ - self.rating_min_, 1e-6)
            targets = ((r.data - self.rating_min_) / span).astype(np.float32)
        else:
            targets = (r.data - np.float32(self.global_mean_)).astype(np.float32)
        linked = (np.diff(trust.indptr) > 0) | (np.bincount(trust.indices, minlength=train.n_users) > 0)
        self.user_rated_ = self.user_rated_ | linked
        return r, targets, trust, np.random.default_rng(self.seed)

    def _init(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Initial factors, uniform on [0, init_range) (JStarCraft's and LibRec's start: every
        initial dot product is positive, so the logistic prediction starts above the middle
        of the scale, near the typical rating, instead of at its centre)."""
        return rng.uniform(0.0, float(self.init_range), (n, int(self.factors))).astype(np.float32)

    @staticmethod
    def _parts(n: int, k: int) -> np.ndarray:
        return np.zeros((GRADIENT_CHUNKS, n, k), dtype=np.float32)

    # ------------------------------------------------------------ scoring
    def _link(self, x: np.ndarray) -> np.ndarray:
        if self.logistic:
            return (self.rating_min_ + sigmoid(x) * (self.rating_max_ - self.rating_min_)).astype(np.float32)
        return (x + np.float32(self.global_mean_)).astype(np.float32)

    def _score_vectors(self, vectors: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        return self._link(vectors @ v.T)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._score_vectors(self.user_factors_[users], items)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._link(np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items]))

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_




def sq(x: np.ndarray) -> float:
    """Sum of squares in float64 (no float32 overflow while a run diverges)."""
    flat = np.ravel(x)
    return float(np.dot(flat.astype(np.float64), flat.astype(np.float64)))
