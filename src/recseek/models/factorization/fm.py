"""Factorisation machines for rating prediction: FMSGD, FMALS and FFM.

Features are the user's and the item's one-hot indicators and the
side columns of the training data (``user_data`` / ``item_data``): categorical columns
become one-hot fields, ``"|"``-separated columns (e.g. genres) multi-hot fields and
numeric columns decile fields. Because every feature belongs either to the user or to the
item, a trained machine folds exactly into ``w0 + b_u + b_i + <p_u, q_i>`` (the user's
features' linear and pairwise terms in ``b_u``, the user-item cross terms in ``p_u . q_i``),
so scoring and fold-in share the path of the other factorization models, and items (or
users) without ratings are still predicted from their side features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...errors import ParameterError
from .._params import Float
from ..base import Array, Scalar, StateSpec
from ..registry import register
from ._base import LatentRatingModel, init_normal, training_arrays

if TYPE_CHECKING:
    import pandas as pd

_FM_RULES = {"init_std": Float(lo=0.0), "reg_bias": Float(lo=0.0)}
#: Numeric side columns with more distinct values than this are cut into deciles.
NUMERIC_LEVELS = 20
#: ``features="auto"`` skips text columns with more distinct values than this share of
#: rows (identifiers, titles, zip codes).
AUTO_MAX_UNIQUE_SHARE = 0.5


def encode_column(values: pd.Series, explicit: bool) -> sp.csr_array | None:
    """One side column as a sparse (n_rows, n_levels) block, or None when ``auto`` skips it.

    Categorical values -> one-hot; ``"|"``-joined values -> multi-hot with weights 1/count;
    numeric with many levels -> deciles (one-hot). Missing values give an empty row.
    """
    import pandas as pd

    n = len(values)
    rows: np.ndarray
    cols: np.ndarray
    data: np.ndarray
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        text = values.astype("string").str.strip()
        text = text.mask(text == "")
        if text.str.contains("|", regex=False).fillna(False).any():
            parts = text.str.split("|").explode().str.strip()
            parts = parts[parts.notna() & (parts != "")]
            codes, _ = pd.factorize(parts)
            rows = parts.index.to_numpy(dtype=np.int64)
            counts = np.bincount(rows, minlength=n)
            cols, data = codes.astype(np.int64), 1.0 / counts[rows]
        else:
            codes, uniques = pd.factorize(text)
            if not explicit and (len(uniques) <= 1 or (len(uniques) > NUMERIC_LEVELS
                                                       and len(uniques) > AUTO_MAX_UNIQUE_SHARE * n)):
                return None
            ok = codes >= 0
            rows, cols, data = np.flatnonzero(ok), codes[ok].astype(np.int64), np.ones(int(ok.sum()))
    else:
        x = pd.to_numeric(values, errors="coerce").astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(x)
        levels = np.unique(x[ok])
        if len(levels) <= NUMERIC_LEVELS:
            if not explicit and len(levels) <= 1:
                return None
            codes = np.searchsorted(levels, x[ok])
        else:
            edges = np.unique(np.quantile(x[ok], np.linspace(0.0, 1.0, 11)[1:-1]))
            codes = np.searchsorted(edges, x[ok], side="right")
        rows, cols, data = np.flatnonzero(ok), codes.astype(np.int64), np.ones(int(ok.sum()))
    width = int(cols.max()) + 1 if len(cols) else 0
    if width == 0:
        return None
    return sp.csr_array((data.astype(np.float32), (rows, cols)), shape=(n, width))


def side_columns(model: str, features: Any, train: Interactions) -> list[tuple[str, str]]:
    """``[("user" | "item", column)]`` selected by the ``features`` hyperparameter."""
    tables = {"user": train.user_data, "item": train.item_data}
    if isinstance(features, str) and features in ("auto", "none"):
        if features == "none":
            return []
        return [(side, str(c)) for side, df in tables.items() if df is not None for c in df.columns]
    if isinstance(features, str) or not isinstance(features, list | tuple):
        raise ParameterError(f"{model}: features must be 'auto', 'none' or a list of column names, got {features!r}")
    out = []
    for name in features:
        side, _, col = str(name).rpartition(":")
        sides = [side] if side in ("user", "item") else ["user", "item"]
        found = [s for s in sides if tables[s] is not None and col in tables[s].columns]
        if not found:
            raise ParameterError(f"{model}: features: column {name!r} is in neither the user nor the item data")
        out.append((found[0], col))
    return out


class _SideFeatureFM(LatentRatingModel):
    """Factorisation machine over ids and side features, folded into biases and factors.

    Subclasses train the ids-only machine in ``_fit_ids`` and the machine over the feature
    rows built by :meth:`_feature_rows` in ``_fit_features``, then call :meth:`_fold`.
    """
    state: ClassVar[dict[str, StateSpec]] = {
        # side features widen the folded factors (FFM: one block per field pair)
        "user_factors_": Array("float32", ("n_users", "width")),
        "item_factors_": Array("float32", ("n_items", "width")),
        "side_features_": Scalar(bool),
        "feature_weights_": Array("float32", ("n_features",), optional=True),
        "feature_factors_": Array("float32", ("n_features", "n_latent_fields", "factors"), optional=True),
        "feature_fields_": Array("int64", ("n_features",), optional=True),
    }

    def _fit(self, train: Interactions) -> None:
        explicit = not isinstance(self.features, str)
        blocks: dict[str, list[sp.csr_array]] = {"user": [], "item": []}
        for side, col in side_columns(self.display_name, self.features, train):
            df = train.user_data if side == "user" else train.item_data
            block = encode_column(df[col].reset_index(drop=True), explicit)
            if block is not None:
                blocks[side].append(block)
        self.side_features_ = bool(blocks["user"] or blocks["item"])
        if self.side_features_:
            self._fit_features(train, blocks["user"], blocks["item"])
        else:
            self._fit_ids(train)

    def _feature_rows(self, user_blocks: list[sp.csr_array],
                      item_blocks: list[sp.csr_array]) -> tuple[sp.csr_array, sp.csr_array, np.ndarray]:
        """Feature rows of every user and every item (float32 CSR, sorted) and each feature's field.

        Fields: 0 user id, 1 item id, then one per side column (user columns first).
        """
        nu, ni = self.n_users_, self.n_items_
        n_us = sum(b.shape[1] for b in user_blocks)
        n_is = sum(b.shape[1] for b in item_blocks)
        field = np.concatenate([np.zeros(nu), np.ones(ni)] + [np.full(b.shape[1], 2 + c) for c, b in
                                                             enumerate(user_blocks + item_blocks)]).astype(np.int64)
        # ids only for users/items with ratings: the others are described by their side features alone
        uid = sp.csr_array(sp.diags(self.user_rated_.astype(np.float32)))
        iid = sp.csr_array(sp.diags(self.item_rated_.astype(np.float32)))
        xu = sp.hstack([uid, sp.csr_array((nu, ni)), *user_blocks, sp.csr_array((nu, n_is))], format="csr")
        xi = sp.hstack([sp.csr_array((ni, nu)), iid, sp.csr_array((ni, n_us)), *item_blocks], format="csr")
        xu, xi = sp.csr_array(xu, dtype=np.float32), sp.csr_array(xi, dtype=np.float32)
        for x in (xu, xi):
            x.eliminate_zeros()
            x.sort_indices()
        return xu, xi, field

    @staticmethod
    def _csr_parts(x: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return x.indptr.astype(np.int64), x.indices.astype(np.int64), x.data

    def _fold(self, xu: sp.csr_array, xi: sp.csr_array, field: np.ndarray, n_user_fields: int, ffm: bool,
              w0: float, w: np.ndarray, v: np.ndarray) -> None:
        """Fold the machine exactly into ``w0 + b_u + b_i + <p_u, q_i>`` and keep its parameters."""
        from ._sgd import ffm_row_terms

        bu = ffm_row_terms(*self._csr_parts(xu), field, ffm, w, v)
        bi = ffm_row_terms(*self._csr_parts(xi), field, ffm, w, v)
        if ffm:
            n_fields = int(field.max()) + 1
            user_fields = [0, *range(2, 2 + n_user_fields)]
            item_fields = [1, *range(2 + n_user_fields, n_fields)]
            p_parts, q_parts = [], []
            for fu in user_fields:
                mu_ = sp.csr_array(sp.diags((field == fu).astype(np.float32)))
                for fi in item_fields:
                    mi_ = sp.csr_array(sp.diags((field == fi).astype(np.float32)))
                    p_parts.append((xu @ mu_) @ v[:, fi, :])
                    q_parts.append((xi @ mi_) @ v[:, fu, :])
            p, q = np.hstack(p_parts), np.hstack(q_parts)
        else:
            p, q = xu @ v[:, 0, :], xi @ v[:, 0, :]
        self.user_factors_ = np.ascontiguousarray(p, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(q, dtype=np.float32)
        self.user_bias_ = np.asarray(bu, dtype=np.float32)
        self.item_bias_ = np.asarray(bi, dtype=np.float32)
        self.global_bias_ = float(w0)
        self.feature_weights_ = w
        self.feature_factors_ = v
        self.feature_fields_ = field

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """With side features, users/items without ratings are predicted from their features."""
        if not getattr(self, "side_features_", False):
            return super()._fallback(users, items)
        out = np.full(len(users), self.global_bias_, dtype=np.float32)
        ku = (users >= 0) & (users < self.n_users_)
        ki = (items >= 0) & (items < self.n_items_)
        out[ku] += self.user_bias_[users[ku]]
        out[ki] += self.item_bias_[items[ki]]
        both = ku & ki
        out[both] += np.einsum("ij,ij->i", self.user_factors_[users[both]], self.item_factors_[items[both]])
        return out


class _FMSGDBase(_SideFeatureFM):
    adagrad = False

    def _fit_ids(self, train: Interactions) -> None:
        from ._sgd import fm_epoch

        users, items, ratings = training_arrays(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        p = init_normal(rng, (self.n_users_, k), self.init_std)
        q = init_normal(rng, (self.n_items_, k), self.init_std)
        bu = np.zeros(self.n_users_, np.float32)
        bi = np.zeros(self.n_items_, np.float32)
        w0 = np.array([self.global_mean_], np.float32)
        acc = [np.zeros_like(a) for a in (w0, p, q, bu, bi)]
        lr = np.float32(self.learning_rate)
        reg = np.float32(self.reg)
        breg = np.float32(self.reg_bias)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            order = rng.permutation(len(ratings)).astype(np.int64)
            loss = fm_epoch(users, items, ratings, order, w0, p, q, bu, bi, lr, breg, breg, reg, self.adagrad, *acc)
            self._check_finite(epoch, np.asarray(loss))
        self._check_finite(int(self.epochs), w0, p, q, bu, bi)
        self._finish(p, q, bu, bi, float(w0[0]))

    def _fit_features(self, train: Interactions, user_blocks: list[sp.csr_array],
                      item_blocks: list[sp.csr_array]) -> None:
        """Train over id + side features, then fold the machine into biases and factors."""
        from ._sgd import ffm_epoch

        xu, xi, field = self._feature_rows(user_blocks, item_blocks)
        n_fields = 2 + len(user_blocks) + len(item_blocks)
        users, items, ratings = training_arrays(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        ffm = bool(self.adagrad)
        n_lat = n_fields if ffm else 1
        v = init_normal(rng, (len(field), n_lat, k), self.init_std)
        w = np.zeros(len(field), np.float32)
        w0 = np.array([self.global_mean_], np.float32)
        gw0, gw, gv = np.zeros_like(w0), np.zeros_like(w), np.zeros_like(v)
        args = (*self._csr_parts(xu), *self._csr_parts(xi), field, ffm)
        lr, breg, reg = np.float32(self.learning_rate), np.float32(self.reg_bias), np.float32(self.reg)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            order = rng.permutation(len(ratings)).astype(np.int64)
            loss = ffm_epoch(users, items, ratings, order, *args, w0, w, v, lr, breg, breg, reg, self.adagrad,
                             gw0, gw, gv)
            self._check_finite(epoch, np.asarray(loss))
        self._check_finite(int(self.epochs), w0, w, v)
        self._fold(xu, xi, field, len(user_blocks), ffm, float(w0[0]), w, v)


@register
class FMSGD(_FMSGDBase):
    """Factorisation machine trained by stochastic gradient descent.

    Features: the user's and the item's one-hot indicators (``y = w0 + w_u + w_i +
    <v_u, v_i>`` without side data) plus the encoded side columns of the training data;
    ``y = w0 + sum_a w_a x_a + sum_{a<b} <v_a, v_b> x_a x_b``, squared loss with L2
    penalties. Rendle (2010).

    Parameters
    ----------
    factors, epochs, learning_rate, reg, seed, verbose
        As for BiasedMF; ``reg`` weighs the latent vectors.
    reg_bias : float
        L2 weight of ``w0`` and the linear weights.
    init_std : float
        Standard deviation of the latent initialisation.
    features : "auto", "none" or list of str
        Side columns used as features: "auto" takes every usable column of ``user_data``
        and ``item_data`` (skipping identifier-like text columns), "none" only the ids, a
        list names columns (``"user:age"`` / ``"item:genres"`` when a name is on both sides).
    """

    name = "FMSGD"
    paper = "Rendle. Factorization Machines. ICDM 2010"
    rules = _FM_RULES
    test_params = {"factors": 8, "epochs": 10}

    def __init__(self, factors: int = 10, epochs: int = 30, learning_rate: float = 0.01, reg: float = 0.05,
                 reg_bias: float = 0.01, init_std: float = 0.1, features: str | list[str] = "auto",
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.features = features
        self.seed = seed
        self.verbose = verbose


@register
class FFM(_FMSGDBase):
    """Field-aware factorisation machine, AdaGrad SGD.

    Fields: the user id, the item id and one per side column. Each feature keeps one
    latent vector per field and meets a feature of field ``g`` through its vector towards
    ``g``: ``y = w0 + sum_a w_a x_a + sum_{a<b} <v_{a,f(b)}, v_{b,f(a)}> x_a x_b`` (without
    side data ``w0 + w_u + w_i + <v_{u,item}, v_{i,user}>``). Trained with per-parameter
    AdaGrad steps as in the paper. Juan, Zhuang, Chin & Lin (2016).

    Parameters
    ----------
    factors, epochs, learning_rate, reg, reg_bias, init_std, features, seed, verbose
        As for FMSGD (``learning_rate`` is AdaGrad's base step).
    """

    name = "FFM"
    paper = "Juan, Zhuang, Chin & Lin. Field-aware Factorization Machines for CTR Prediction. RecSys 2016"
    rules = _FM_RULES
    test_params = {"factors": 8, "epochs": 10}
    adagrad = True

    def __init__(self, factors: int = 10, epochs: int = 30, learning_rate: float = 0.05, reg: float = 0.05,
                 reg_bias: float = 0.01, init_std: float = 0.1, features: str | list[str] = "auto",
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.features = features
        self.seed = seed
        self.verbose = verbose


@register
class FMALS(_SideFeatureFM):
    """Factorisation machine trained by alternating least squares (coordinate-wise).

    Every parameter (global bias, linear weights, each latent coordinate) is set to its
    exact minimiser with the others fixed, keeping the residuals of all ratings cached.
    Features: the user's and the item's one-hot indicators plus, as for FMSGD, the
    encoded side columns of the training data; with side features the sweep runs over
    the general sparse design matrix with per-dimension caches of ``sum_l v_lf x_l`` and
    the machine is then folded exactly into biases and factors. Rendle, Gantner,
    Freudenthaler & Schmidt-Thieme (2011).

    Parameters
    ----------
    factors, epochs, reg, reg_bias, init_std, features, seed, verbose
        As for FMSGD (no learning rate).
    """

    name = "FMALS"
    paper = ("Rendle, Gantner, Freudenthaler & Schmidt-Thieme. Fast Context-aware Recommendations with "
             "Factorization Machines. SIGIR 2011")
    rules = _FM_RULES
    test_params = {"factors": 8, "epochs": 5}

    def __init__(self, factors: int = 10, epochs: int = 20, reg: float = 5.0, reg_bias: float = 5.0,
                 init_std: float = 0.1, features: str | list[str] = "auto", seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.reg_bias = reg_bias
        self.init_std = init_std
        self.features = features
        self.seed = seed
        self.verbose = verbose

    def _fit_ids(self, train: Interactions) -> None:
        from ._als import fm_als_sweep, residuals
        from .alternating import _sides

        (ui, uj, ud), (ii, ij, _), pos = _sides(train)
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        # augmented dimension-major factors: rows 0..k-1 latent, k = (b_u | 1), k+1 = (1 | b_i)
        pt = np.vstack([init_normal(rng, (k, self.n_users_), self.init_std),
                        np.zeros((1, self.n_users_), np.float32), np.ones((1, self.n_users_), np.float32)])
        qt = np.vstack([init_normal(rng, (k, self.n_items_), self.init_std),
                        np.ones((1, self.n_items_), np.float32), np.zeros((1, self.n_items_), np.float32)])
        w0 = float(self.global_mean_)
        resid = residuals(ui, uj, ud - np.float32(w0), np.ascontiguousarray(pt.T), np.ascontiguousarray(qt.T))
        regs = np.full(k + 2, self.reg, np.float32)
        regs[k:] = self.reg_bias
        user_dims = np.array([*range(k), k], dtype=np.int64)
        item_dims = np.array([*range(k), k + 1], dtype=np.int64)
        n = len(resid)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            shift = float(resid.sum()) / (n + self.reg_bias)
            w0 += shift
            resid -= np.float32(shift)
            fm_als_sweep(ui, uj, np.arange(n, dtype=np.int64), ii, ij, pos, resid, pt, qt, user_dims, item_dims,
                         regs, regs)
            self._check_finite(epoch, resid)
        self._check_finite(int(self.epochs), pt, qt)
        self._finish(pt[:k].T, qt[:k].T, pt[k], qt[k + 1], w0)

    def _fit_features(self, train: Interactions, user_blocks: list[sp.csr_array],
                      item_blocks: list[sp.csr_array]) -> None:
        """Coordinate descent over the id + side feature design matrix, then the exact fold."""
        from ._als import fm_als_feature_sweep
        from ._sgd import ffm_row_terms

        xu, xi, field = self._feature_rows(user_blocks, item_blocks)
        users, items, ratings = training_arrays(train)
        # design matrix, one row per rating: its user's feature row plus its item's (disjoint columns)
        x = sp.csc_array(xu[users] + xi[items], dtype=np.float32)
        x.sort_indices()
        rng = np.random.default_rng(self.seed)
        k = int(self.factors)
        v = init_normal(rng, (len(field), 1, k), self.init_std)
        w = np.zeros(len(field), np.float32)
        w0 = np.array([self.global_mean_], np.float32)
        # exact residuals of the initial machine: within-row terms plus the user-item cross terms
        bu = ffm_row_terms(*self._csr_parts(xu), field, False, w, v)
        bi = ffm_row_terms(*self._csr_parts(xi), field, False, w, v)
        p, q = xu @ v[:, 0, :], xi @ v[:, 0, :]
        pred = w0[0] + bu[users] + bi[items] + np.einsum("ij,ij->i", p[users], q[items])
        resid = (ratings - pred).astype(np.float32)
        cache = np.zeros(len(ratings), np.float32)
        colptr, rows = x.indptr.astype(np.int64), x.indices.astype(np.int64)
        breg, reg = np.float32(self.reg_bias), np.float32(self.reg)
        for epoch in self._progress(range(int(self.epochs)), total=int(self.epochs)):
            fm_als_feature_sweep(colptr, rows, x.data, resid, w0, w, v, breg, breg, reg, cache)
            self._check_finite(epoch, resid)
        self._check_finite(int(self.epochs), w0, w, v)
        self._fold(xu, xi, field, len(user_blocks), False, float(w0[0]), w, v)
