"""SVD++ and asymmetric SVD: factor models that also use which items a user rated."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float
from ..base import Array, Scalar, StateSpec
from ..registry import register
from ._base import LatentRatingModel, init_normal
from .mf import sgd_chunks


def _csr_parts(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float32)


def _inner_shuffle(rng: np.random.Generator, indptr: np.ndarray) -> np.ndarray:
    """A permutation of positions that shuffles entries within each row only."""
    n = int(indptr[-1])
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.float64), np.diff(indptr))
    return np.argsort(rows + rng.random(n) * 0.5).astype(np.int64)


class _ImplicitSGD(LatentRatingModel):
    """Training loop shared by SVD++ and asymmetric SVD (per-user SGD passes)."""
    state: ClassVar[dict[str, StateSpec]] = {
        "loss_": Scalar(float, finite=False),
        "implicit_factors_": Array("float32", ("n_items", "factors")),
    }

    def _breg(self) -> np.float32:
        return np.float32(self.reg if self.reg_bias is None else self.reg_bias)

    def _epoch_kernel(self, indptr, indices, data, users, inner, state, lr, chunks):
        raise NotImplementedError

    def _fit(self, train: Interactions) -> None:
        indptr, indices, data = _csr_parts(train.matrix)
        rng = np.random.default_rng(self.seed)
        state = self._init_state(rng)
        lr = np.float32(self.learning_rate)
        chunks = sgd_chunks(len(data))
        self.loss_ = 0.0
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            users = rng.permutation(self.n_users_).astype(np.int64)
            inner = _inner_shuffle(rng, indptr)
            loss = self._epoch_kernel(indptr, indices, data, users, inner, state, lr, chunks)
            self._check_finite(epoch, np.asarray(loss))
            self.loss_ = float(loss) / max(len(data), 1)
        self._check_finite(int(self.epochs), *state.values())
        self._store(train, state)


@register
class SVDPlusPlus(_ImplicitSGD):
    """SVD++: biased matrix factorisation plus implicit feedback from the rated items.

    ``r(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``, trained by
    SGD one user at a time; the implicit-factor updates of a user are accumulated in O(k)
    per rating, so an epoch costs O(nnz k) instead of O(sum_u |N(u)|^2 k).
    Koren (2008).

    Parameters
    ----------
    factors, epochs, learning_rate, reg, reg_bias, init_std, seed, verbose
        As for BiasedMF.
    reg_implicit : float
        L2 weight of the implicit item factors ``y_j``.
    """

    name = "SVDPlusPlus"
    paper = ("Koren. Factorization Meets the Neighborhood: a Multifaceted Collaborative Filtering Model. "
             "KDD 2008")
    rules = {"reg_bias": Float(lo=0.0, none_ok=True), "reg_implicit": Float(lo=0.0), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 8}
    state: ClassVar[dict[str, StateSpec]] = {
        "free_user_factors_": Array("float32", ("n_users", "factors")),
    }

    def __init__(self, factors: int = 20, epochs: int = 12, learning_rate: float = 0.007, reg: float = 0.02,
                 reg_bias: float | None = 0.01, reg_implicit: float = 0.001, init_std: float = 0.1,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.reg_implicit = reg_implicit
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _init_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        k = int(self.factors)
        return {
            "p": init_normal(rng, (self.n_users_, k), self.init_std),
            "q": init_normal(rng, (self.n_items_, k), self.init_std),
            "y": init_normal(rng, (self.n_items_, k), self.init_std),
            "bu": np.zeros(self.n_users_, np.float32),
            "bi": np.zeros(self.n_items_, np.float32),
        }

    def _epoch_kernel(self, indptr, indices, data, users, inner, s, lr, chunks):
        from ._sgd import svdpp_epoch

        reg = np.float32(self.reg)
        return svdpp_epoch(indptr, indices, data, users, inner, s["p"], s["q"], s["y"], s["bu"], s["bi"],
                           np.float32(self.global_mean_), lr, reg, reg, self._breg(),
                           np.float32(self.reg_implicit), chunks)

    def _implicit(self, rows: sp.csr_array) -> np.ndarray:
        from ._sgd import implicit_sums

        indptr, indices, data = _csr_parts(rows)
        return implicit_sums(indptr, indices, data, self.implicit_factors_, self.implicit_factors_,
                             np.zeros(len(data), np.float32), False)

    def _store(self, train: Interactions, s: dict[str, np.ndarray]) -> None:
        self.implicit_factors_ = s["y"]
        self.free_user_factors_ = s["p"]
        self._finish(s["p"], s["q"], s["bu"], s["bi"], self.global_mean_)
        self.user_factors_ = (s["p"] + self._implicit(train.matrix)).astype(np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        from ._foldin import ridge_fold_in

        rows = sp.csr_array(rows)
        rows.sort_indices()
        z = self._implicit(rows)
        r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        resid = rows.data - np.einsum("ij,ij->i", z[r], self.item_factors_[rows.indices])
        offset = (np.float32(self.global_bias_) + self.item_bias_).astype(np.float32)
        bias, p = ridge_fold_in(rows.indptr.astype(np.int64), rows.indices.astype(np.int64),
                                resid.astype(np.float32), self.item_factors_, offset,
                                np.float32(self.fold_in_reg), True)
        out = (p + z) @ self.item_factors_.T
        out += (bias + np.float32(self.global_bias_))[:, None] + self.item_bias_[None, :]
        return out.astype(np.float32, copy=False)


@register
class ASVDPlusPlus(_ImplicitSGD):
    """Asymmetric SVD: users are represented only through the items they rated.

    ``r(u, i) = mu + b_u + b_i + q_i . |R(u)|^-1/2 sum_{j in R(u)} ((r_uj - b_uj) x_j + y_j)``
    with ``b_uj = mu + b_u + b_j``; no free user factors, so new users are folded in
    without any solve. Koren (2008), section 3 ("Asymmetric-SVD").

    Parameters
    ----------
    factors, epochs, learning_rate, reg, reg_bias, init_std, seed, verbose
        As for BiasedMF; ``reg`` also weighs the item factors ``x_j`` and ``y_j``.
    """

    name = "ASVDPlusPlus"
    paper = ("Koren. Factorization Meets the Neighborhood: a Multifaceted Collaborative Filtering Model. "
             "KDD 2008")
    rules = {"reg_bias": Float(lo=0.0, none_ok=True), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 8}
    state: ClassVar[dict[str, StateSpec]] = {
        "explicit_factors_": Array("float32", ("n_items", "factors")),
    }

    def __init__(self, factors: int = 20, epochs: int = 20, learning_rate: float = 0.01, reg: float = 0.02,
                 reg_bias: float | None = 0.01, init_std: float = 0.05, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _init_state(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        k = int(self.factors)
        return {
            "q": init_normal(rng, (self.n_items_, k), self.init_std),
            "x": init_normal(rng, (self.n_items_, k), self.init_std),
            "y": init_normal(rng, (self.n_items_, k), self.init_std),
            "bu": np.zeros(self.n_users_, np.float32),
            "bi": np.zeros(self.n_items_, np.float32),
        }

    def _epoch_kernel(self, indptr, indices, data, users, inner, s, lr, chunks):
        from ._sgd import asvd_epoch

        reg = np.float32(self.reg)
        return asvd_epoch(indptr, indices, data, users, inner, s["q"], s["x"], s["y"], s["bu"], s["bi"],
                          np.float32(self.global_mean_), lr, self._breg(), reg, reg, reg, chunks)

    def _user_vectors(self, rows: sp.csr_array, user_bias: np.ndarray) -> np.ndarray:
        from ._sgd import implicit_sums

        indptr, indices, data = _csr_parts(rows)
        r = np.repeat(np.arange(rows.shape[0]), np.diff(indptr))
        base = (np.float32(self.global_bias_) + user_bias[r] + self.item_bias_[indices]).astype(np.float32)
        return implicit_sums(indptr, indices, data, self.implicit_factors_, self.explicit_factors_, base, True)

    def _store(self, train: Interactions, s: dict[str, np.ndarray]) -> None:
        self.implicit_factors_ = s["y"]
        self.explicit_factors_ = s["x"]
        self._finish(np.zeros((self.n_users_, s["q"].shape[1]), np.float32), s["q"], s["bu"], s["bi"],
                     self.global_mean_)
        self.user_factors_ = self._user_vectors(train.matrix, self.user_bias_)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = sp.csr_array(rows)
        rows.sort_indices()
        r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        resid = rows.data - self.global_bias_ - self.item_bias_[rows.indices]
        counts = np.diff(rows.indptr)
        breg = float(self.reg if self.reg_bias is None else self.reg_bias)
        bias = (np.bincount(r, weights=resid, minlength=rows.shape[0]) / (counts + 1.0 + breg * counts))
        bias = bias.astype(np.float32)
        z = self._user_vectors(rows, bias)
        out = z @ self.item_factors_.T
        out += (bias + np.float32(self.global_bias_))[:, None] + self.item_bias_[None, :]
        return out.astype(np.float32, copy=False)
