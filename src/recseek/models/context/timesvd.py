"""timeSVD++: SVD++ with time-changing biases, scaling and user factors (Koren, 2009)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError, ParameterError
from .._params import Float, Int
from ..base import Array, RatingPredictor, Scalar, StateSpec
from ..registry import register


@register
class TimeSVD(RatingPredictor):
    """timeSVD++: ratings drift with time through the user bias, the item bias and the user factors.

    Prediction at day ``t`` (Koren 2009, eqs. 9, 10, 12, 13 with SVD++'s implicit part)::

        r(u, i, t) = mu + b_u + alpha_u dev_u(t) + b_(u,t)
                     + (b_i + b_(i,Bin(t))) (c_u + c_(u,t))
                     + q_i . (p_u + alpha^p_u dev_u(t) + p_(u,t) + |N(u)|^-1/2 sum_(j in N(u)) y_j)

    ``dev_u(t) = sign(t - t_u) |t - t_u|^beta`` (``t_u``: the user's mean rating day);
    ``Bin(t)`` cuts the training days into ``bins`` equal spans; ``b_(u,t)``, ``c_(u,t)``,
    ``p_(u,t)`` exist for each day a user rated on. Squared error with L2 penalties
    (``reg`` on the factors, ``reg_bias`` on biases and scalings; ``c_u`` is drawn
    towards 1), SGD over the users in random order and each user's ratings in random
    order; the gradient of the ``y_j`` of a user is gathered over the user's ratings and
    applied once after them. Days are ``floor((timestamp - first timestamp) / day_length)``.

    :meth:`predict` and :meth:`score` predict at each user's last training day (the
    ratings to predict lie in the future and their times are not given);
    :meth:`predict_at` takes the timestamps (day-specific terms of days a user did not
    rate on are zero, days past the training span fall in the last bin).

    Parameters
    ----------
    factors : int
        Latent dimensions.
    epochs : int
        SGD passes (JStarCraft ``recommender.iterator.maximum``).
    learning_rate : float
        SGD step (``recommender.iterator.learnrate``).
    reg : float
        L2 weight of ``p_u, alpha^p_u, p_(u,t), q_i, y_j`` (JStarCraft's user and item
        regularisation).
    reg_bias : float
        L2 weight of the biases and scalings.
    beta : float
        Exponent of the time deviation ``dev_u(t)`` (0.4 in the paper).
    bins : int
        Time bins of the item bias (30 in the paper).
    day_length : float
        Timestamp units per day (86400 for Unix seconds; 1 when timestamps count days).
    init_std : float
        Standard deviation of the normal initial factors.
    seed : int or None
        Random seed (initialisation and orders).
    verbose : bool
        Progress bar with the training error.

    JStarCraft reads FilmTrust's instants as milliseconds and divides their differences
    into whole days, so every rating falls on day 0 and its TimeSVD has no time effect.
    """

    name = "TimeSVD"
    family: ClassVar[str] = "context"
    requires: ClassVar[tuple[str, ...]] = ("timestamps",)
    paper = "Koren. Collaborative Filtering with Temporal Dynamics. KDD 2009"
    rules = {"beta": Float(lo=0.0), "bins": Int(lo=1), "day_length": Float(lo=0.0, lo_open=True),
             "init_std": Float(lo=0.0), "reg_bias": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 20, "learning_rate": 0.01}
    divergence_hint = "lower learning_rate or raise reg"
    state: ClassVar[dict[str, StateSpec]] = {
        "global_bias_": Scalar(float),
        "first_time_": Scalar(float),
        "n_days_": Scalar(int, "n_days"),
        "user_bias_": Array("float32", ("n_users",)),
        "user_drift_": Array("float32", ("n_users",)),
        "user_scale_": Array("float32", ("n_users",)),
        "user_mean_day_": Array("float64", ("n_users",)),
        "user_last_day_": Array("int64", ("n_users",)),
        "item_bias_": Array("float32", ("n_items",)),
        "item_bin_bias_": Array("float32", ("n_items", "bins")),
        "user_factors_": Array("float32", ("n_users", "factors")),
        "user_drift_factors_": Array("float32", ("n_users", "factors")),
        "implicit_sum_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "implicit_factors_": Array("float32", ("n_items", "factors")),
        "day_indptr_": Array("int64", ("n_users_plus_one",)),
        "day_": Array("int64", ("n_user_days",)),
        "day_bias_": Array("float32", ("n_user_days",)),
        "day_scale_": Array("float32", ("n_user_days",)),
        "day_factors_": Array("float32", ("n_user_days", "factors")),
        "loss_": Scalar(float, finite=False),
    }

    def __init__(self, factors: int = 10, epochs: int = 50, learning_rate: float = 0.005, reg: float = 0.01,
                 reg_bias: float = 0.01, beta: float = 0.4, bins: int = 30, day_length: float = 86400.0,
                 init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.beta = beta
        self.bins = bins
        self.day_length = day_length
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    # ------------------------------------------------------------ time helpers
    def _days(self, timestamps: np.ndarray) -> np.ndarray:
        return np.floor((np.asarray(timestamps, dtype=np.float64) - self.first_time_) / float(self.day_length)).astype(
            np.int64)

    def _bin(self, days: np.ndarray) -> np.ndarray:
        b = (np.clip(days, 0, self.n_days_ - 1) * int(self.bins)) // max(self.n_days_, 1)
        return np.clip(b, 0, int(self.bins) - 1).astype(np.int64)

    def _dev(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        d = days - self.user_mean_day_[users]
        return (np.sign(d) * np.abs(d) ** float(self.beta)).astype(np.float32)

    def _day_slot(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Index of the day-specific parameters of (user, day), -1 where the user did not rate that day."""
        lo = self.day_indptr_[users]
        hi = self.day_indptr_[users + 1]
        span = int(max(self.n_days_, int(days.max(initial=0)) + 1)) + 1
        keys = np.repeat(np.arange(self.n_users_, dtype=np.int64), np.diff(self.day_indptr_)) * span + self.day_
        want = users * span + np.clip(days, -1, span - 1)
        pos = np.searchsorted(keys, want)
        ok = (pos < hi) & (pos >= lo)
        ok[ok] = keys[pos[ok]] == want[ok]
        return np.where(ok, pos, -1)

    # ------------------------------------------------------------ training
    def _fit(self, train: Interactions) -> None:
        from ..factorization.mf import sgd_chunks
        from ._timesvd import timesvd_epoch

        if train.timestamps is None:
            raise DataError(f"{self.display_name} needs timestamps: the training data has none")
        r = sp.csr_array(train.matrix, dtype=np.float32)
        if not r.has_sorted_indices:
            raise DataError(f"{self.display_name}: the training matrix must have sorted indices")
        ts = np.asarray(train.timestamps, dtype=np.float64)
        n_u, n_i, k = train.n_users, train.n_items, int(self.factors)
        self.first_time_ = float(ts.min())
        days = np.floor((ts - self.first_time_) / float(self.day_length)).astype(np.int64)
        self.n_days_ = int(days.max()) + 1
        counts = np.diff(r.indptr)
        owner = np.repeat(np.arange(n_u, dtype=np.int64), counts)
        sums = np.bincount(owner, weights=days, minlength=n_u)
        mean_day = np.divide(sums, counts, out=np.full(n_u, float(days.mean())), where=counts > 0)
        self.user_mean_day_ = mean_day.astype(np.float64)
        last = np.full(n_u, -1, dtype=np.int64)
        np.maximum.at(last, owner, days)
        self.user_last_day_ = np.where(last >= 0, last, self.n_days_ - 1).astype(np.int64)
        # (user, day) slots
        key = owner * (self.n_days_ + 1) + days
        uniq, ud = np.unique(key, return_inverse=True)
        slot_user = uniq // (self.n_days_ + 1)
        self.day_ = (uniq % (self.n_days_ + 1)).astype(np.int64)
        indptr = np.zeros(n_u + 1, dtype=np.int64)
        np.cumsum(np.bincount(slot_user, minlength=n_u), out=indptr[1:])
        self.day_indptr_ = indptr
        n_slots = len(uniq)
        devs = self._dev(owner, days)
        bins = self._bin(days)
        rng = np.random.default_rng(self.seed)
        std = float(self.init_std)
        p = (std * rng.standard_normal((n_u, k))).astype(np.float32)
        q = (std * rng.standard_normal((n_i, k))).astype(np.float32)
        y = (std * rng.standard_normal((n_i, k))).astype(np.float32)
        ap = np.zeros((n_u, k), np.float32)
        pud = np.zeros((n_slots, k), np.float32)
        bu, au, cu = np.zeros(n_u, np.float32), np.zeros(n_u, np.float32), np.ones(n_u, np.float32)
        bud, cud = np.zeros(n_slots, np.float32), np.zeros(n_slots, np.float32)
        bi, bib = np.zeros(n_i, np.float32), np.zeros((n_i, int(self.bins)), np.float32)
        mu = np.float32(self.global_mean_)
        lr, reg, rb = np.float32(self.learning_rate), np.float32(self.reg), np.float32(self.reg_bias)
        active = np.flatnonzero(counts > 0).astype(np.int64)
        r_indptr = r.indptr.astype(np.int64)
        r_indices = r.indices.astype(np.int32)
        ud = ud.astype(np.int64)
        chunks = sgd_chunks(r.nnz)
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(self.epochs), desc=self.display_name, leave=False)
        loss = 0.0
        for epoch in range(int(self.epochs)):
            order = rng.permutation(active)
            inner = np.argsort(owner + rng.random(r.nnz), kind="stable").astype(np.int64)
            loss = float(timesvd_epoch(order, r_indptr, r_indices, r.data, inner, devs, ud, bins, mu, bu, au, bud,
                                       bi, bib, cu, cud, p, ap, pud, q, y, lr, reg, rb, chunks)) / max(r.nnz, 1)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(mse=f"{loss:.4f}")
            self._check_finite(epoch, p, q, y, ap, pud, bu, bi, bib, cu)
        if bar is not None:
            bar.close()
        self.loss_ = loss
        seen = sp.csr_array((np.ones(r.nnz, np.float32), r_indices, r_indptr), shape=r.shape)
        norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0).astype(np.float32)
        self.implicit_sum_ = np.ascontiguousarray(norm[:, None] * (seen @ y), dtype=np.float32)
        self.global_bias_ = float(mu)
        self.user_bias_, self.user_drift_, self.user_scale_ = bu, au, cu
        self.item_bias_, self.item_bin_bias_ = bi, bib
        self.user_factors_, self.user_drift_factors_ = p, ap
        self.item_factors_, self.implicit_factors_ = q, y
        self.day_bias_, self.day_scale_, self.day_factors_ = bud, cud, pud

    def check_state(self, params: dict[str, np.ndarray], history: bool = True) -> None:
        super().check_state(params, history)
        ptr, n_users = params["day_indptr_"], int(params["n_users_"])
        if ptr.shape[0] != n_users + 1 or ptr[0] != 0 or ptr[-1] != params["day_"].shape[0] or (np.diff(ptr) < 0).any():
            from ...errors import ModelFileError

            raise ModelFileError(f"{self.display_name} state day_indptr_ is not a valid row pointer over the user days")

    # ------------------------------------------------------------ prediction
    def _user_terms(self, users: np.ndarray, days: np.ndarray):
        slot = self._day_slot(users, days)
        has = slot >= 0
        s = np.where(has, slot, 0)
        dev = self._dev(users, days)
        base = (np.float32(self.global_bias_) + self.user_bias_[users] + self.user_drift_[users] * dev
                + np.where(has, self.day_bias_[s], 0.0)).astype(np.float32)
        scale = (self.user_scale_[users] + np.where(has, self.day_scale_[s], 0.0)).astype(np.float32)
        vec = (self.user_factors_[users] + self.user_drift_factors_[users] * dev[:, None]
               + np.where(has[:, None], self.day_factors_[s], 0.0) + self.implicit_sum_[users]).astype(np.float32)
        return base, scale, vec, self._bin(days)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        base, scale, vec, bins = self._user_terms(users, self.user_last_day_[users])
        q = self.item_factors_ if items is None else self.item_factors_[items]
        bi = self.item_bias_ if items is None else self.item_bias_[items]
        bib = self.item_bin_bias_ if items is None else self.item_bin_bias_[items]
        out = vec @ q.T + base[:, None] + (bi[None, :] + bib[:, bins].T) * scale[:, None]
        return out.astype(np.float32, copy=False)

    def _predict_days(self, users: np.ndarray, items: np.ndarray, days: np.ndarray) -> np.ndarray:
        base, scale, vec, bins = self._user_terms(users, days)
        ib = self.item_bias_[items] + self.item_bin_bias_[items, bins]
        return (base + ib * scale + np.einsum("ij,ij->i", vec, self.item_factors_[items])).astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._predict_days(users, items, self.user_last_day_[users])

    def predict_at(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """Predicted ratings of pairs ``(users[j], items[j])`` at ``timestamps[j]`` (float32, clipped)."""
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        ts = np.atleast_1d(np.asarray(timestamps, dtype=np.float64))
        if not (users.shape == items.shape == ts.shape):
            raise ParameterError("predict_at: users, items and timestamps must have the same length")
        if not np.all(np.isfinite(ts)):
            raise DataError("predict_at: timestamps must be finite numbers")
        ok = (users >= 0) & (users < self.n_users_) & (items >= 0) & (items < self.n_items_)
        ok[ok] = self.user_rated_[users[ok]] & self.item_rated_[items[ok]]
        out = np.full(users.shape[0], self.global_mean_, dtype=np.float32)
        if ok.any():
            out[ok] = self._predict_days(users[ok], items[ok], self._days(ts[ok]))
        return np.clip(out, self.rating_min_, self.rating_max_)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_
