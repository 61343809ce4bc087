"""RankCD and RankVFCD: weighted matrix factorisation for implicit feedback by coordinate
descent, without and with item (visual) features and item-item (functional) relations."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from ...errors import DataError
from .._params import Float
from ..base import Array, Recommender, Scalar, StateSpec
from ..registry import register
from .vbpr import EpochBar, csr_arrays, scaled_features

#: ``Interactions.meta`` key of the optional item-item relation matrix used by RankVFCD.
RELATIONS_KEY = "item_relations"


class _CoordinateDescent(Recommender):
    """Shared parts: uniform-missing WRMF user step, exact fold-in, scoring."""

    family = "content"
    task = "ranking"
    divergence_hint = "raise reg, or lower alpha"

    def fit(self, train: Interactions):  # noqa: D102 - see Recommender.fit
        from ..factorization._implicit import SERIAL_WORK

        nnz = train.nnz if isinstance(train, Interactions) else 0
        if nnz * int(getattr(self, "factors", 1) or 1) >= SERIAL_WORK:
            return super().fit(train)
        from ..._numba import get_num_threads, set_num_threads

        # small data: starting and joining threads would cost more than the sweeps
        threads = get_num_threads()
        set_num_threads(1)
        try:
            return super().fit(train)
        finally:
            set_num_threads(threads)

    def _confidence(self, train: Interactions) -> np.ndarray:
        from ..factorization._implicit import confidence_weights

        # JStarCraft binarises the scores first (every stored pair counts as 1)
        return confidence_weights(np.ones(train.nnz, dtype=np.float32), self.alpha, self.display_name)

    def _layout(self, train: Interactions, w: np.ndarray):
        from ..factorization._implicit import balanced_chunks, csr_parts, max_row, n_chunks

        m = train.matrix
        ui, iu = csr_parts(m.indptr, m.indices, w, train.shape)
        return ui, iu, balanced_chunks(ui[0], n_chunks()), balanced_chunks(iu[0], n_chunks()), \
            max(max_row(ui[0]), 1), max(max_row(iu[0]), 1)

    def _user_step(self, ui, chunks_u, len_u) -> None:
        from ..factorization._implicit import gram
        from ..factorization._implicit_kernels import eals_sweep

        q = self.item_factors_
        s = gram(q).astype(np.float32)
        ones_u = np.ones(self.user_factors_.shape[0], dtype=np.float32)
        ones_i = np.ones(q.shape[0], dtype=np.float32)
        eals_sweep(ui[0], ui[1], ui[2], self.user_factors_, q, s, ones_u, ones_i, np.float32(self.reg),
                   chunks_u, len_u)

    def _scoring_items(self) -> np.ndarray:
        return self.item_factors_

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self._scoring_items()
        v = v if items is None else v[items]
        return (self.user_factors_[users] @ v.T).astype(np.float32, copy=False)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self._scoring_items()

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def fold_in(self, rows: sp.csr_array) -> np.ndarray:
        """Factors of new users (n_new, factors): the exact minimiser of the user objective
        ``sum_i c_ui (r_ui - p.q_i)^2 + reg |p|^2`` given the item factors."""
        from ..factorization._implicit import gram
        from ..factorization._implicit_kernels import solve_rows

        rows = sp.csr_array(rows)
        if rows.shape[1] != self.n_items_:
            raise DataError(f"{self.display_name}: fold-in rows have {rows.shape[1]} items, expected {self.n_items_}")
        rows.sum_duplicates()
        rows.sort_indices()
        q = self.item_factors_
        w = np.full(rows.nnz, 1.0 + float(self.alpha), dtype=np.float32)
        out = np.zeros((rows.shape[0], q.shape[1]), dtype=np.float32)
        if rows.shape[0]:
            lam = np.full(rows.shape[0], float(self.reg), dtype=np.float32)
            solve_rows(np.asarray(rows.indptr, np.int64), np.asarray(rows.indices, np.int32), w - 1.0, w, q,
                       gram(q).astype(np.float32), lam, np.arange(rows.shape[0], dtype=np.int64), out)
        return out

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        return (self.fold_in(rows) @ self._scoring_items().T).astype(np.float32)


@register
class RankCD(_CoordinateDescent):
    """RankCD: implicit-feedback matrix factorisation by element-wise coordinate descent.

    Minimises the weighted least-squares objective of Hu, Koren & Volinsky (ICDM 2008)
    over every user-item pair,

    ``sum_(u,i) c_ui (r_ui - p_u . q_i)^2 + reg (|P|^2 + |Q|^2)``

    with ``r_ui = 1`` and ``c_ui = 1 + alpha`` on observed pairs (values are binarised,
    as JStarCraft does) and ``r_ui = 0``, ``c_ui = 1`` on all others. Each sweep updates
    every user factor, one coordinate at a time in closed form, then every item factor;
    the Gram cache ``Q^T Q`` (``P^T P``) makes the unobserved pairs free, so a sweep
    costs ``O(nnz K + (n_users + n_items) K^2)``. These are the updates of eALS (He et
    al., SIGIR 2016) with uniform missing-data weights; JStarCraft's ``RankCDModel``
    cites no paper and is the coordinate-descent baseline of Wu et al.'s VFPMF code
    (see :class:`RankVFCD`). Scores: ``p_u . q_i``.

    Parameters
    ----------
    factors : int
        K, latent dimensions.
    epochs : int
        Sweeps (users, then items).
    reg : float
        L2 penalty on user and item factors.
    alpha : float
        Confidence slope: an observed pair weighs ``1 + alpha``.
    init_std : float
        Standard deviation of the normal initial factors.
    seed, verbose
        As usual; ``verbose`` shows the objective per sweep.

    JStarCraft: ``recommender.factor.number`` -> ``factors``, ``recommender.iterator.maximum``
    -> ``epochs``, ``recommender.user/item.regularization`` -> ``reg``,
    ``recommender.rankcd.alpha`` -> ``alpha``, ``recommender.init.std`` -> ``init_std``.
    """

    name = "RankCD"
    paper = ("Hu, Koren & Volinsky. Collaborative Filtering for Implicit Feedback Datasets. ICDM 2008; "
             "solved by element-wise coordinate descent as in He, Zhang, Kan & Chua, Fast Matrix "
             "Factorization for Online Recommendation with Implicit Feedback, SIGIR 2016")
    rules = {"alpha": Float(lo=0.0), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 5}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
    }

    def __init__(
        self,
        factors: int = 20,
        epochs: int = 10,
        reg: float = 0.1,
        alpha: float = 5.0,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.alpha = alpha
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ..factorization._implicit import gram
        from ..factorization._implicit_kernels import eals_sweep

        w = self._confidence(train)
        rng = np.random.default_rng(self.seed)
        std = np.float32(self.init_std)
        k = int(self.factors)
        self.user_factors_ = (rng.standard_normal((train.n_users, k), dtype=np.float32) * std).astype(np.float32)
        self.item_factors_ = (rng.standard_normal((train.n_items, k), dtype=np.float32) * std).astype(np.float32)
        ui, iu, chunks_u, chunks_i, len_u, len_i = self._layout(train, w)
        ones_u = np.ones(train.n_users, dtype=np.float32)
        ones_i = np.ones(train.n_items, dtype=np.float32)
        reg = np.float32(self.reg)
        bar = EpochBar(self, int(self.epochs), "objective")
        try:
            for epoch in range(int(self.epochs)):
                self._user_step(ui, chunks_u, len_u)
                p = self.user_factors_
                eals_sweep(iu[0], iu[1], iu[2], self.item_factors_, p, gram(p).astype(np.float32), ones_i, ones_u,
                           reg, chunks_i, len_i)
                self._check_finite(epoch, self.user_factors_, self.item_factors_)
                if bar.bar is not None:
                    bar.update(wrmf_objective(self.user_factors_, self.item_factors_, ui, float(self.reg)))
        finally:
            bar.close()


def wrmf_objective(P: np.ndarray, Q: np.ndarray, ui, reg: float) -> float:
    """``sum_(u,i) c_ui (r_ui - p_u.q_i)^2 + reg (|P|^2 + |Q|^2)`` with the uniform missing weight 1."""
    indptr, indices, w = ui
    users = np.repeat(np.arange(P.shape[0]), np.diff(indptr))
    pred = np.einsum("ij,ij->i", P[users], Q[indices], dtype=np.float64)
    all_pairs = float(np.sum((P.T.astype(np.float64) @ P) * (Q.T.astype(np.float64) @ Q)))
    observed = float(np.sum(w * (1.0 - pred) ** 2 - pred ** 2))
    return all_pairs + observed + reg * (float(np.sum(P.astype(np.float64) ** 2)) + float(np.sum(Q.astype(np.float64) ** 2)))


@register
class RankVFCD(_CoordinateDescent):
    """RankVFCD: implicit-feedback factorisation with visual and functional item information.

    The VFPMF model of Wu, He, Chen, Nie, Zheng & Ye (IEEE TKDE 2020), solved by
    element-wise coordinate descent. Items carry a feature vector ``f_i`` (the paper's
    CNN image features; any numeric features here) and, optionally, relations to
    other items (the paper's "bought together"). The objective

    ``sum_(u,i) c_ui (r_ui - p_u.q_i)^2 + reg (|P|^2 + |Q|^2 + |Z|^2)``
    ``+ beta sum_(i,g) d_ig (s_ig - q_i.z_g)^2 + gamma sum_i |q_i - E^T f_i|^2 + reg_feature |E|^2``

    factorises the user-item matrix (``c = 1 + alpha`` observed, 1 elsewhere, targets
    1 / 0) together with the item-item relation matrix S (same weighting, relation
    factors Z), and ties each item factor to a linear map ``E`` of the item's
    features. Each sweep updates P, then Q (all three terms), then Z, then E, one
    coordinate at a time in closed form. An item without training interactions is
    scored with its feature projection: ``p_u . E^T f_i``; the others with
    ``p_u . q_i``.

    Relations are read from ``train.meta["item_relations"]`` (a sparse (n_items,
    n_items) matrix; a stored entry marks a related pair) when present; without them
    the beta term vanishes (Z stays 0). Features are divided by their largest absolute
    value first (JStarCraft min-max scales them).

    Parameters
    ----------
    factors : int
        K, latent dimensions of P, Q, Z and E.
    epochs : int
        Sweeps.
    reg : float
        L2 penalty on P, Q and Z.
    alpha : float
        Confidence slope of an observed user-item pair or related item pair.
    beta : float
        Weight of the item-relation factorisation.
    gamma : float
        Weight tying item factors to their feature projection ``E^T f_i``.
    reg_feature : float
        L2 penalty on the feature map E (the paper's lambda_E).
    init_std : float
        Standard deviation of the normal initial factors.
    seed, verbose
        As usual.

    JStarCraft (``RankVFCDModel``): ``recommender.rankvfcd.alpha/beta/gamma`` ->
    ``alpha``/``beta``/``gamma``, ``recommender.rankvfcd.lamutaE`` -> ``reg_feature``,
    ``recommender.user/item.regularization`` -> ``reg``, the rest as :class:`RankCD`.
    JStarCraft fixes 4096 features; here the feature count follows the data.
    JStarCraft's source names no paper; its update rules are those of the VFPMF code.
    """

    name = "RankVFCD"
    paper = ("Wu, He, Chen, Nie, Zheng & Ye. Modeling Product's Visual and Functional Characteristics "
             "for Recommender Systems. IEEE TKDE 2020")
    requires = ("item_features",)
    rules = {"alpha": Float(lo=0.0), "beta": Float(lo=0.0), "gamma": Float(lo=0.0),
             "reg_feature": Float(lo=0.0, lo_open=True), "init_std": Float(lo=0.0)}
    test_params = {"factors": 8, "epochs": 5}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "relation_factors_": Array("float32", ("n_items", "factors")),
        "feature_factors_": Array("float32", ("n_features", "factors")),
        "item_feature_factors_": Array("float32", ("n_items", "factors")),
        "item_trained_": Array("bool", ("n_items",)),
        "feature_scale_": Scalar(float),
    }

    def __init__(
        self,
        factors: int = 20,
        epochs: int = 10,
        reg: float = 0.1,
        alpha: float = 5.0,
        beta: float = 10.0,
        gamma: float = 50.0,
        reg_feature: float = 50.0,
        init_std: float = 0.01,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.reg = reg
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.reg_feature = reg_feature
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _relations(self, train: Interactions) -> sp.csr_array | None:
        rel = train.meta.get(RELATIONS_KEY)
        if rel is None:
            return None
        if not sp.issparse(rel) or rel.shape != (train.n_items, train.n_items):
            raise DataError(f"{self.display_name}: meta['{RELATIONS_KEY}'] must be a sparse matrix of shape "
                            f"({train.n_items}, {train.n_items}), got {getattr(rel, 'shape', type(rel).__name__)}")
        m = sp.csr_array(rel, dtype=np.float32)
        m.sum_duplicates()
        m.eliminate_zeros()
        m.sort_indices()
        return m if m.nnz else None

    def _scoring_items(self) -> np.ndarray:
        return np.where(self.item_trained_[:, None], self.item_factors_, self.item_feature_factors_)

    def _objective(self, ui, rel_rows, y: np.ndarray) -> float:
        """The training objective (see the class docstring) at the current factors."""
        reg = float(self.reg)
        q = self.item_factors_.astype(np.float64)
        z = self.relation_factors_
        out = wrmf_objective(self.user_factors_, self.item_factors_, ui, reg)
        beta = float(self.beta)
        if beta > 0 and rel_rows[1].size:
            out += beta * (wrmf_objective(self.item_factors_, z, rel_rows, 0.0))
            out += reg * float(np.sum(z.astype(np.float64) ** 2))
        out += float(self.gamma) * float(np.sum((q - y) ** 2))
        out += float(self.reg_feature) * float(np.sum(self.feature_factors_.astype(np.float64) ** 2))
        return out

    def _fit(self, train: Interactions) -> None:
        from ..factorization._implicit import balanced_chunks, csr_parts, gram, max_row, n_chunks
        from ..factorization._implicit_kernels import eals_sweep
        from ._e_kernels import project_items, vfcd_feature_sweep, vfcd_item_sweep

        feats, scale = scaled_features(train, self.display_name)
        self.feature_scale_ = float(scale)
        f_indptr, f_indices, f_data = csr_arrays(feats)
        ft = sp.csr_array(feats.T)
        ft.sort_indices()
        ft_indptr, ft_indices, ft_data = csr_arrays(ft)
        sq_norms = np.asarray(ft.multiply(ft).sum(axis=1), dtype=np.float32).reshape(-1)
        n_features = feats.shape[1]
        w = self._confidence(train)
        rng = np.random.default_rng(self.seed)
        std = np.float32(self.init_std)
        k = int(self.factors)

        def normal(n: int) -> np.ndarray:
            return (rng.standard_normal((n, k), dtype=np.float32) * std).astype(np.float32)

        self.user_factors_ = normal(train.n_users)
        self.item_factors_ = normal(train.n_items)
        z = normal(train.n_items)
        self.feature_factors_ = normal(n_features)
        ui, iu, chunks_u, chunks_i, len_u, len_i = self._layout(train, w)
        self.item_trained_ = np.diff(iu[0]) > 0
        rel = self._relations(train)
        beta = float(self.beta)
        if rel is None or beta == 0.0:
            z[:] = 0.0
            rel_rows = (np.zeros(train.n_items + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
            rel_cols = None
        else:
            wr = np.full(rel.nnz, 1.0 + float(self.alpha), dtype=np.float32)
            rel_rows, rel_cols = csr_parts(rel.indptr, rel.indices, wr, rel.shape)
        self.relation_factors_ = z
        len_g = max(max_row(rel_rows[0]), 1)
        chunks_g = None if rel_cols is None else balanced_chunks(rel_cols[0], n_chunks())
        len_gc = 1 if rel_cols is None else max(max_row(rel_cols[0]), 1)
        ones = np.ones(train.n_items, dtype=np.float32)
        reg = np.float32(self.reg)
        gamma = np.float32(self.gamma)
        y = np.zeros((train.n_items, k), dtype=np.float32)
        bar = EpochBar(self, int(self.epochs), "objective")
        try:
            for epoch in range(int(self.epochs)):
                self._user_step(ui, chunks_u, len_u)
                p = self.user_factors_
                y, _ = project_items(f_indptr, f_indices, f_data, self.feature_factors_,
                                     np.zeros(n_features, dtype=np.float32))
                vfcd_item_sweep(iu[0], iu[1], iu[2], rel_rows[0], rel_rows[1], rel_rows[2], self.item_factors_, p,
                                self.relation_factors_, gram(p).astype(np.float32),
                                gram(self.relation_factors_).astype(np.float32), y, reg, np.float32(beta), gamma,
                                chunks_i, len_i, len_g)
                if rel_cols is not None:
                    q = self.item_factors_
                    eals_sweep(rel_cols[0], rel_cols[1], rel_cols[2], self.relation_factors_, q,
                               gram(q).astype(np.float32), ones, ones, np.float32(float(self.reg) / beta),
                               chunks_g, len_gc)
                vfcd_feature_sweep(ft_indptr, ft_indices, ft_data, self.feature_factors_, self.item_factors_, y,
                                   sq_norms, gamma, np.float32(self.reg_feature))
                self._check_finite(epoch, self.user_factors_, self.item_factors_, self.relation_factors_,
                                   self.feature_factors_)
                if bar.bar is not None:
                    bar.update(self._objective(ui, rel_rows, y))
        finally:
            bar.close()
        self.item_feature_factors_ = project_items(f_indptr, f_indices, f_data, self.feature_factors_,
                                                   np.zeros(n_features, dtype=np.float32))[0]
