"""Explicit factor models over aspect:sentiment reviews: EFMRating and EFMRanking.

Zhang, Lai, Zhang, Zhang, Liu & Ma (2014) extract (aspect, sentiment) pairs from reviews
and build two matrices beside the ratings ``A`` (users x items):

- user attention ``X`` (users x aspects): ``X[u, f] = 1 + (N - 1) * (2 / (1 + exp(-t)) - 1)``
  where ``t`` is how often user ``u`` mentions aspect ``f``;
- item quality ``Y`` (items x aspects): ``Y[i, f] = 1 + (N - 1) / (1 + exp(-s))`` where
  ``s`` is the summed sentiment of the mentions of ``f`` in the reviews of item ``i``.

``N`` is the width of the rating scale (JStarCraft RNS: ``max - min`` of the training
ratings). The model factorises the three matrices jointly with non-negative factors:
explicit factors ``U1`` (users, r), ``U2`` (items, r) shared with the aspect factors
``V`` (aspects, r) and hidden factors ``H1`` (users, r'), ``H2`` (items, r'),

    min ||U1 U2' + H1 H2' - A||^2 + lambda_x ||U1 V' - X||^2 + lambda_y ||U2 V' - Y||^2
        + lambda_u (||U1||^2 + ||U2||^2) + lambda_h (||H1||^2 + ||H2||^2) + lambda_v ||V||^2

by the paper's multiplicative updates (each parameter is multiplied by the square root
of the ratio of the negative and positive parts of its gradient, so factors stay
non-negative). ``missing`` chooses what the norms run over:

``"zero"``
    the paper's form: every entry, missing ratings, attentions and qualities counting as
    0 (computed with Gram matrices, nothing of size users x items is formed). Missing
    entries act as negatives, which is what a ranking needs (EFMRanking's default).
``"ignore"``
    the observed entries only (the masked form of LibRec and JStarCraft RNS, one numba
    kernel sweep per epoch, parallel over aspects, users and items). Predictions of
    missing ratings are then not pulled towards 0, which is what rating prediction
    needs (EFMRating's default) and what reproduces JStarCraft's published rows.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import ParameterError
from .._params import Choice, Float, Int
from ..base import Array, RatingPredictor, Recommender, Scalar, StateSpec
from ..registry import register

_PAPER = ("Zhang, Lai, Zhang, Zhang, Liu & Ma. Explicit Factor Models for Explainable Recommendation "
          "based on Phrase-level Sentiment Analysis. SIGIR 2014")


def aspect_matrices(train: Interactions, scale: float) -> tuple[sp.csr_array, sp.csr_array]:
    """User attention ``X`` (n_users, n_aspects) and item quality ``Y`` (n_items, n_aspects).

    Mentions come from ``meta["review_aspect_mentions"]`` when present (else every stored
    entry of ``meta["review_aspects"]`` counts once). As in JStarCraft RNS, an item whose
    mentions of an aspect sum to a sentiment of exactly 0 gets no ``Y`` entry for it.
    """
    sentiment = sp.csr_array(train.meta["review_aspects"], dtype=np.float64)
    mentions = train.meta.get("review_aspect_mentions")
    if mentions is None or getattr(mentions, "shape", None) != sentiment.shape:
        mentions = sp.csr_array((np.ones(sentiment.nnz), sentiment.indices, sentiment.indptr), shape=sentiment.shape)
    mentions = sp.csr_array(mentions, dtype=np.float64)
    nnz = train.nnz
    rec = np.arange(nnz)
    users = train.user_index()
    items = train.matrix.indices.astype(np.int64)
    pu = sp.csr_array((np.ones(nnz), (users, rec)), shape=(train.n_users, nnz))
    pi = sp.csr_array((np.ones(nnz), (items, rec)), shape=(train.n_items, nnz))
    t = sp.csr_array(pu @ mentions)
    t.eliminate_zeros()
    s_pattern = sp.csr_array(pi @ mentions)
    s_pattern.eliminate_zeros()
    s = sp.csr_array(pi @ sentiment)
    # keep exactly the mentioned (item, aspect) pairs, then drop those with a net sentiment of 0
    s = sp.csr_array((s[s_pattern.nonzero()], s_pattern.nonzero()), shape=s_pattern.shape) if s_pattern.nnz else s_pattern
    s.eliminate_zeros()
    x = t.copy()
    x.data = 1.0 + (scale - 1.0) * (2.0 / (1.0 + np.exp(-t.data)) - 1.0)
    y = s.copy()
    y.data = 1.0 + (scale - 1.0) / (1.0 + np.exp(-s.data))
    x = sp.csr_array(x, dtype=np.float32)
    y = sp.csr_array(y, dtype=np.float32)
    x.sort_indices()
    y.sort_indices()
    return x, y


def _csr_parts(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = sp.csr_array(m)
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float32)


def _mult(theta: np.ndarray, num: np.ndarray, den: np.ndarray) -> None:
    """``theta <- theta * sqrt(num / den)`` in place (float32)."""
    theta *= np.sqrt(np.maximum(num, 0.0) / (den + 1e-8)).astype(np.float32)


def _dense_sweep(a: sp.csr_array, x: sp.csr_array, y: sp.csr_array, v: np.ndarray, u1: np.ndarray,
                 u2: np.ndarray, h1: np.ndarray, h2: np.ndarray, lam_x: float, lam_y: float, lam_u: float,
                 lam_h: float, lam_v: float) -> float:
    """One sweep of the paper's updates, missing entries of A, X and Y counting as zeros.

    Gram matrices replace the dense products (``(U1 U2' + H1 H2') U2 = U1 (U2'U2) + H1 (H2'U2)``),
    so nothing of size users x items is formed.
    """
    at = sp.csr_array(a.T)
    xt = sp.csr_array(x.T)
    yt = sp.csr_array(y.T)
    _mult(v, lam_x * (xt @ u1) + lam_y * (yt @ u2),
          lam_x * (v @ (u1.T @ u1)) + lam_y * (v @ (u2.T @ u2)) + lam_v * v)
    _mult(u1, a @ u2 + lam_x * (x @ v),
          u1 @ (u2.T @ u2) + h1 @ (h2.T @ u2) + lam_x * (u1 @ (v.T @ v)) + lam_u * u1)
    _mult(u2, at @ u1 + lam_y * (y @ v),
          u2 @ (u1.T @ u1) + h2 @ (h1.T @ u1) + lam_y * (u2 @ (v.T @ v)) + lam_u * u2)
    _mult(h1, a @ h2, u1 @ (u2.T @ h2) + h1 @ (h2.T @ h2) + lam_h * h1)
    _mult(h2, at @ h1, u2 @ (u1.T @ h1) + h2 @ (h1.T @ h1) + lam_h * h2)
    # observed-entry part of the objective (the zeros' share is left out of the reported figure)
    users = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    pred = np.einsum("ij,ij->i", u1[users], u2[a.indices]) + np.einsum("ij,ij->i", h1[users], h2[a.indices])
    return float(np.sum((a.data - pred) ** 2)) + _penalties(v, u1, u2, h1, h2, 0.0, 0.0, lam_u, lam_h, lam_v)


def _penalties(v, u1, u2, h1, h2, lam_x, lam_y, lam_u, lam_h, lam_v) -> float:
    """The L2 terms of the objective."""
    sq = lambda a: float(np.sum(np.square(a, dtype=np.float64)))  # noqa: E731
    return float(lam_u) * (sq(u1) + sq(u2)) + float(lam_h) * (sq(h1) + sq(h2)) + float(lam_v) * sq(v)


class _EFM:
    """Training shared by EFMRating and EFMRanking (mixed into a Recommender)."""

    family: ClassVar[str] = "content"
    paper: ClassVar[str] = _PAPER
    requires: ClassVar[tuple[str, ...]] = ("aspects",)
    rules: ClassVar[dict[str, Any]] = {
        "explicit_factors": Int(lo=1),
        "lambda_x": Float(lo=0.0), "lambda_y": Float(lo=0.0), "lambda_u": Float(lo=0.0),
        "lambda_h": Float(lo=0.0), "lambda_v": Float(lo=0.0), "missing": Choice(("zero", "ignore")),
    }
    divergence_hint: ClassVar[str] = "raise lambda_u, lambda_h or lambda_v"
    state: ClassVar[dict[str, StateSpec]] = {
        "aspect_factors_": Array("float32", ("n_aspects", "explicit_factors")),
        "user_explicit_": Array("float32", ("n_users", "explicit_factors")),
        "item_explicit_": Array("float32", ("n_items", "explicit_factors")),
        "user_hidden_": Array("float32", ("n_users", "n_hidden")),
        "item_hidden_": Array("float32", ("n_items", "n_hidden")),
        "scale_max_": Scalar(float),
        "loss_": Scalar(float, finite=False),
    }

    def check_params(self) -> None:
        super().check_params()  # type: ignore[misc]
        if self.explicit_factors > self.factors:
            raise ParameterError(f"{self.display_name}: explicit_factors ({self.explicit_factors}) must not exceed "
                                 f"factors ({self.factors})")

    def _fit(self, train: Interactions) -> None:
        from ._d_efm import efm_sweep

        data = train.matrix.data
        lo, hi = float(data.min()), float(data.max())
        scale = hi - lo if hi > lo else max(hi, 1.0)
        x, y = aspect_matrices(train, scale)
        n_aspects = x.shape[1]
        r = int(self.explicit_factors)
        rh = int(self.factors) - r
        rng = np.random.default_rng(self.seed)
        v = (0.01 * rng.random((n_aspects, r))).astype(np.float32)
        u1 = rng.random((self.n_users_, r)).astype(np.float32)
        h1 = rng.random((self.n_users_, rh)).astype(np.float32)
        u2 = rng.random((self.n_items_, r)).astype(np.float32)
        h2 = rng.random((self.n_items_, rh)).astype(np.float32)
        rm = sp.csr_array(train.matrix, dtype=np.float32)
        cm = sp.csr_array(rm.T.tocsr())
        args = (*_csr_parts(rm), *_csr_parts(cm), *_csr_parts(x), *_csr_parts(sp.csr_array(x.T.tocsr())),
                *_csr_parts(y), *_csr_parts(sp.csr_array(y.T.tocsr())))
        lams = tuple(np.float32(getattr(self, n)) for n in ("lambda_x", "lambda_y", "lambda_u", "lambda_h", "lambda_v"))
        self.loss_ = float("nan")
        bar = self._progress(range(int(self.epochs)), total=int(self.epochs))  # type: ignore[attr-defined]
        for epoch in bar:
            if self.missing == "ignore":
                loss = efm_sweep(*args, v, u1, u2, h1, h2, *lams) + _penalties(v, u1, u2, h1, h2, *lams)
            else:
                loss = _dense_sweep(rm, x, y, v, u1, u2, h1, h2, *(float(a) for a in lams))
            self._check_finite(epoch, np.asarray(loss), v, u1, u2)  # type: ignore[attr-defined]
            self.loss_ = float(loss)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss:.4g}")
        self._check_finite(int(self.epochs), h1, h2)  # type: ignore[attr-defined]
        self.aspect_factors_ = v
        self.user_explicit_, self.item_explicit_ = u1, u2
        self.user_hidden_, self.item_hidden_ = h1, h2
        self.scale_max_ = hi

    # ------------------------------------------------------------ helpers
    def _rating_scores(self, u1: np.ndarray, h1: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        u2 = self.item_explicit_ if items is None else self.item_explicit_[items]
        h2 = self.item_hidden_ if items is None else self.item_hidden_[items]
        return (u1 @ u2.T + h1 @ h2.T).astype(np.float32, copy=False)

    def _fold_in(self, rows: sp.csr_array) -> tuple[np.ndarray, np.ndarray]:
        """Explicit and hidden factors of new users by ridge regression on the item factors."""
        from ..factorization._foldin import ridge_fold_in

        rows = sp.csr_array(rows)
        rows.sort_indices()
        q = np.ascontiguousarray(np.hstack([self.item_explicit_, self.item_hidden_]), dtype=np.float32)
        _, p = ridge_fold_in(rows.indptr.astype(np.int64), rows.indices.astype(np.int64),
                             rows.data.astype(np.float32), q, np.zeros(self.n_items_, np.float32),
                             np.float32(max(self.lambda_u, 1e-3)), False)
        r = int(self.explicit_factors)
        return np.ascontiguousarray(p[:, :r]), np.ascontiguousarray(p[:, r:])

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()  # type: ignore[attr-defined]
        return np.hstack([self.item_explicit_, self.item_hidden_])

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()  # type: ignore[attr-defined]
        return np.hstack([self.user_explicit_, self.user_hidden_])

    def aspect_scores(self, users: np.ndarray) -> np.ndarray:
        """Predicted attention ``U1[u] V'`` of ``users`` to every aspect, shape (n, n_aspects).

        The explanation of the paper: a user's top aspects, compared with an item's
        predicted quality (:meth:`quality_scores`).
        """
        self._check_fitted()  # type: ignore[attr-defined]
        return self.user_explicit_[np.asarray(users, dtype=np.int64)] @ self.aspect_factors_.T

    def quality_scores(self, items: np.ndarray) -> np.ndarray:
        """Predicted quality ``U2[i] V'`` of ``items`` on every aspect, shape (n, n_aspects)."""
        self._check_fitted()  # type: ignore[attr-defined]
        return self.item_explicit_[np.asarray(items, dtype=np.int64)] @ self.aspect_factors_.T


_PARAMS_DOC = """
    Parameters
    ----------
    factors : int
        Explicit plus hidden latent dimensions (JStarCraft ``recommender.factor.number``).
    explicit_factors : int
        r, the explicit dimensions shared with the aspects (``recommender.factor.explicit``);
        the hidden ones are ``factors - explicit_factors``.
    epochs : int
        Sweeps of multiplicative updates (``recommender.iterator.maximum``).
    lambda_x, lambda_y : float
        Weights of the attention and quality reconstruction (``recommender.regularization.lambdax``
        / ``lambday``).
    lambda_u, lambda_h, lambda_v : float
        L2 weights of the explicit factors U1, U2, the hidden factors H1, H2 and the aspect
        factors V (``lambdau`` / ``lambdah`` / ``lambdav``).
    missing : {"zero", "ignore"}
        Whether missing entries of the three matrices count as zeros (the paper) or are left
        out (JStarCraft RNS); see the module notes.
    seed : int or None
        Seed of the uniform initialisation (V in [0, 0.01), the rest in [0, 1)).
    verbose : bool
        Show a progress bar with the objective.

    Learned state
    -------------
    aspect_factors_ (n_aspects, explicit_factors), user_explicit_ (n_users, explicit_factors),
    item_explicit_ (n_items, explicit_factors), user_hidden_ (n_users, factors - explicit_factors),
    item_hidden_ (n_items, factors - explicit_factors), all float32 and non-negative.

    With ``missing="ignore"`` users or items without reviews keep their initial explicit
    factors (as in JStarCraft RNS); a new user is folded in from ratings by ridge regression
    on ``[U2 | H2]``.
"""


@register
class EFMRating(_EFM, RatingPredictor):
    __doc__ = ("""Explicit factor model, rating prediction: ``r(u, i) = U1[u] . U2[i] + H1[u] . H2[i]``.

    Needs the ``"aspects"`` side data (``meta["review_aspects"]``, e.g. from
    :func:`recseek.data.readers.read_reviews` on ``dc_dense.txt``).
""" + _PARAMS_DOC)

    name = "EFMRating"
    test_params = {"epochs": 20}

    def __init__(self, factors: int = 10, explicit_factors: int = 5, epochs: int = 50, lambda_x: float = 1.0,
                 lambda_y: float = 1.0, lambda_u: float = 0.01, lambda_h: float = 0.01, lambda_v: float = 0.01,
                 missing: str = "ignore", seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.explicit_factors = explicit_factors
        self.epochs = epochs
        self.lambda_x = lambda_x
        self.lambda_y = lambda_y
        self.lambda_u = lambda_u
        self.lambda_h = lambda_h
        self.lambda_v = lambda_v
        self.missing = missing
        self.seed = seed
        self.verbose = verbose

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._rating_scores(self.user_explicit_[users], self.user_hidden_[users], items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        u1, h1 = self._fold_in(rows)
        return self._rating_scores(u1, h1, None)


@register
class EFMRanking(_EFM, Recommender):
    __doc__ = ("""Explicit factor model, top-N ranking by the user's most cared-about aspects.

    With ``X^ = U1 V'`` and ``Y^ = U2 V'``, the score of item ``i`` for user ``u`` is

        alpha * sum_{f in C_u} X^[u, f] Y^[i, f] / (top_aspects * max_rating)
            + (1 - alpha) * (U1[u] . U2[i] + H1[u] . H2[i])

    where ``C_u`` holds the ``top_aspects`` aspects of largest ``X^[u, f]`` (all aspects when
    there are fewer). Training is that of :class:`EFMRating` on the rating values.

    alpha : float
        Weight of the aspect match against the rating prediction, in [0, 1]
        (JStarCraft ``efmranking.threshold``, default 1).
    top_aspects : int
        k, the user's aspects that enter the match (``efmranking.featureLimit``, 250).
""" + _PARAMS_DOC)

    name = "EFMRanking"
    task = "ranking"
    rules = {**_EFM.rules, "alpha": Float(lo=0.0, hi=1.0), "top_aspects": Int(lo=1)}
    test_params = {"epochs": 20}

    def __init__(self, factors: int = 10, explicit_factors: int = 5, epochs: int = 200, lambda_x: float = 1.0,
                 lambda_y: float = 1.0, lambda_u: float = 0.01, lambda_h: float = 0.01, lambda_v: float = 0.01,
                 alpha: float = 1.0, top_aspects: int = 250, missing: str = "zero", seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.explicit_factors = explicit_factors
        self.epochs = epochs
        self.lambda_x = lambda_x
        self.lambda_y = lambda_y
        self.lambda_u = lambda_u
        self.lambda_h = lambda_h
        self.lambda_v = lambda_v
        self.alpha = alpha
        self.top_aspects = top_aspects
        self.missing = missing
        self.seed = seed
        self.verbose = verbose

    def _ranking_scores(self, u1: np.ndarray, h1: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        x_hat = u1 @ self.aspect_factors_.T
        u2 = self.item_explicit_ if items is None else self.item_explicit_[items]
        y_hat = u2 @ self.aspect_factors_.T
        n_aspects = x_hat.shape[1]
        k = min(int(self.top_aspects), n_aspects)
        if k < n_aspects:
            top = np.argpartition(-x_hat, k - 1, axis=1)[:, :k]
            masked = np.zeros_like(x_hat)
            rows = np.arange(x_hat.shape[0])[:, None]
            masked[rows, top] = x_hat[rows, top]
        else:
            masked = x_hat
        out = np.float32(self.alpha / (int(self.top_aspects) * self.scale_max_)) * (masked @ y_hat.T)
        if self.alpha < 1.0:
            out += np.float32(1.0 - self.alpha) * self._rating_scores(u1, h1, items)
        return out.astype(np.float32, copy=False)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._ranking_scores(self.user_explicit_[users], self.user_hidden_[users], items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        u1, h1 = self._fold_in(rows)
        return self._ranking_scores(u1, h1, None)
