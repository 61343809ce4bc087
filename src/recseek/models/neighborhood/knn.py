"""k-nearest-neighbour recommenders: item- and user-based, for ranking and for ratings.

Similarities are computed by a multi-core kernel that keeps only the ``neighbors`` most
similar entities per row (sparse), with the shrunk formulas of Dacrema et al. (2019):
``cosine = dot / (|a| |b| + shrinkage)``. Rating models predict
``r_ui = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j |s_ij|`` over the ``neighbors`` most
similar neighbours that rated the target (Koren 2010; the Surprise convention).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Bool, Choice, Float, Int, UsedWhen
from ..base import Array, RatingPredictor, Recommender, Sparse, StateSpec
from ..registry import register
from ._similarity import WEIGHTINGS, apply_weighting, idf_weights

_RANKING_SIMS = ("cosine", "jaccard", "asymmetric", "conditional")


def _csr(m) -> sp.csr_array:
    out = sp.csr_array(m)
    out.sort_indices()
    return out


def rows_times_sparse(x: sp.csr_array, rows: np.ndarray, w: sp.csr_array) -> np.ndarray:
    """Dense float32 ``x[rows] @ w`` without a sparse intermediate (numba; multi-core for big batches)."""
    from ._kernels import rows_times_sparse as serial
    from ._kernels import rows_times_sparse_parallel as parallel

    out = np.zeros((len(rows), w.shape[1]), dtype=np.float32)
    kernel = parallel if len(rows) * w.shape[1] >= (1 << 20) else serial
    kernel(x.indptr, x.indices, x.data, np.asarray(rows, dtype=np.int64), w.indptr, w.indices, w.data, out)
    return out


def _dense(m) -> np.ndarray:
    return np.asarray(m.toarray() if sp.issparse(m) else m, dtype=np.float32)


class _RankingKNN(Recommender):
    family = "neighborhood"
    rules = {
        "similarity": Choice(_RANKING_SIMS),
        "weighting": Choice(WEIGHTINGS),
        "alpha": UsedWhen("similarity", ("asymmetric",), Float(lo=0.0, hi=1.0)),
        "binary": Bool(),
    }
    test_params = {"neighbors": 10}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_items_": Sparse(("n_users", "n_items")),
    }

    def __init__(
        self,
        neighbors: int = 50,
        shrinkage: float = 10.0,
        similarity: str = "cosine",
        weighting: str = "none",
        alpha: float = 0.5,
        binary: bool = True,
    ) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.similarity = similarity
        self.weighting = weighting
        self.alpha = alpha
        self.binary = binary

    def _values(self, m: sp.csr_array) -> sp.csr_array:
        m = sp.csr_array(m, dtype=np.float32, copy=True)
        if self.binary:
            m.data = np.ones_like(m.data)
        m.sort_indices()
        return m


@register
class ItemKNNRanking(_RankingKNN):
    """Item-based k-nearest-neighbour top-N recommendation.

    ``score(u, i) = sum_{j in I(u)} x_uj s(i, j)`` where ``s(i, .)`` keeps the
    ``neighbors`` items most similar to ``i``. ``similarity``: ``cosine`` (default),
    ``jaccard``, ``asymmetric`` (asymmetric cosine with exponent ``alpha``) or
    ``conditional`` (co-count / count of the target); ``weighting`` re-weights the
    interaction matrix first (``tfidf`` or ``bm25``, users being the terms).
    ``binary=True`` treats every interaction as 1.

    Sarwar, Karypis, Konstan, Riedl. Item-based collaborative filtering recommendation
    algorithms. WWW 2001; shrunk similarities as in Dacrema, Cremonesi, Jannach, RecSys 2019.
    """

    name = "ItemKNNRanking"
    paper = "Sarwar, Karypis, Konstan, Riedl. Item-based collaborative filtering recommendation algorithms. WWW 2001"
    state: ClassVar[dict[str, StateSpec]] = {
        "similarity_": Sparse(("n_items", "n_items")),
    }

    def _fit(self, train: Interactions) -> None:
        from ._similarity import pairwise_topk

        x = self._values(train.matrix)
        xt = _csr(x.T)
        if self.weighting != "none":
            xt = apply_weighting(xt, self.weighting, idf_weights(xt), float(np.diff(xt.indptr).mean()))
        self.user_items_ = x
        self.similarity_ = pairwise_topk(xt, self.similarity, self.neighbors, self.shrinkage, self.alpha)
        self._weights = None

    def _weights_matrix(self) -> sp.csr_array:
        if getattr(self, "_weights", None) is None:
            self._weights = _csr(self.similarity_.T)
        return self._weights

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        w = self._weights_matrix()
        if items is not None:
            return _dense(self.user_items_[users] @ w[:, items])
        return rows_times_sparse(self.user_items_, users, w)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        x = self._values(rows)
        return rows_times_sparse(x, np.arange(x.shape[0], dtype=np.int64), self._weights_matrix())

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return _dense(self.similarity_[items])


@register
class UserKNNRanking(_RankingKNN):
    """User-based k-nearest-neighbour top-N recommendation.

    ``score(u, i) = sum_{v in N(u)} s(u, v) x_vi`` over the ``neighbors`` users most
    similar to ``u``; similarity and weighting options as in :class:`ItemKNNRanking`
    (items being the terms). New users are folded in by computing their similarity to
    the training users.

    Resnick, Iacovou, Suchak, Bergstrom, Riedl. GroupLens: an open architecture for
    collaborative filtering of netnews. CSCW 1994.
    """

    name = "UserKNNRanking"
    paper = "Resnick, Iacovou, Suchak, Bergstrom, Riedl. GroupLens: an open architecture for collaborative filtering of netnews. CSCW 1994"
    state: ClassVar[dict[str, StateSpec]] = {
        "similarity_": Sparse(("n_users", "n_users")),
    }

    def _fit(self, train: Interactions) -> None:
        from ._similarity import pairwise_topk

        x = self._values(train.matrix)
        self.user_items_ = x
        xw = x
        if self.weighting != "none":
            self.idf_ = idf_weights(x)
            self.avg_length_ = float(np.asarray(x.sum(axis=1)).mean())
            xw = apply_weighting(x, self.weighting, self.idf_, self.avg_length_)
        self.similarity_ = pairwise_topk(xw, self.similarity, self.neighbors, self.shrinkage, self.alpha)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        x = self.user_items_ if items is None else self.user_items_[:, items]
        return _dense(self.similarity_[users] @ x)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        from ._similarity import cross_similarity, prune_rows

        rows = self._values(rows)
        train = self.user_items_
        if self.weighting != "none":
            rows = apply_weighting(rows, self.weighting, self.idf_, self.avg_length_)
            train = apply_weighting(train, self.weighting, self.idf_, self.avg_length_)
        sims = prune_rows(cross_similarity(rows, train, self.similarity, self.shrinkage, self.alpha), self.neighbors)
        return _dense(sims @ self.user_items_)

    def user_similarity(self, users: np.ndarray) -> np.ndarray:
        return _dense(self.similarity_[users])


# ---------------------------------------------------------------------------- ratings
class _RatingKNN(RatingPredictor):
    """Shared machinery: baseline, residual similarity and neighbour-weighted prediction."""

    family = "neighborhood"
    user_based = False
    state: ClassVar[dict[str, StateSpec]] = {
        "user_bias_": Array("float32", ("n_users",)),
        "item_bias_": Array("float32", ("n_items",)),
        "residuals_": Sparse(("n_users", "n_items")),
    }

    def _baselines(self, train: Interactions) -> tuple[np.ndarray, np.ndarray]:
        """User and item offsets from the global mean: ``b_ui = mu + b_u + b_i``."""
        raise NotImplementedError

    def _similarity_settings(self) -> tuple[str, float]:
        return self.similarity, self.shrinkage

    def _fit(self, train: Interactions) -> None:
        from ._similarity import pairwise_topk

        m = _csr(train.matrix.astype(np.float32))
        self.user_bias_, self.item_bias_ = self._baselines(train)
        u = train.user_index()
        resid = m.copy()
        resid.data = (m.data - self.global_mean_ - self.user_bias_[u] - self.item_bias_[m.indices]).astype(np.float32)
        self.residuals_ = resid
        similarity, shrinkage = self._similarity_settings()
        entities = resid if self.user_based else _csr(resid.T)
        if similarity != "pearson":
            entities = entities.copy()
            entities.data = m.data.copy() if self.user_based else _csr(m.T).data.copy()
        self.similarity_ = pairwise_topk(entities, similarity, None, shrinkage,
                                         min_support=getattr(self, "min_support", 1))
        self._by_item = None

    def _item_major(self) -> sp.csr_array:
        if getattr(self, "_by_item", None) is None:
            self._by_item = _csr(self.residuals_.T)
        return self._by_item

    def _offsets(self, users: np.ndarray, items: np.ndarray, resid: sp.csr_array | None = None,
                 rows_of: np.ndarray | None = None) -> np.ndarray:
        from ._kernels import knn_predict

        s = self.similarity_
        if self.user_based:
            r = self._item_major()
            targets, lists = users, items
        else:
            r = self.residuals_ if resid is None else resid
            targets, lists = items, (users if rows_of is None else rows_of)
        out, _ = knn_predict(
            targets.astype(np.int64), lists.astype(np.int64),
            s.indptr.astype(np.int64), s.indices.astype(np.int32), s.data,
            r.indptr.astype(np.int64), r.indices.astype(np.int32), r.data,
            int(self.neighbors), int(self.min_k), True,
        )
        return out

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        base = self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
        return (base + self._offsets(users, items)).astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        cols = np.arange(self.n_items_) if items is None else items
        uu = np.repeat(users, len(cols))
        ii = np.tile(cols, len(users))
        return self._predict(uu, ii).reshape(len(users), len(cols))

    def _fallback(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.full(len(users), self.global_mean_, dtype=np.float32)
        uk = (users >= 0) & (users < self.n_users_)
        ik = (items >= 0) & (items < self.n_items_)
        out[uk] += self.user_bias_[users[uk]]
        out[ik] += self.item_bias_[items[ik]]
        return out

    def _new_user_bias(self, rows: sp.csr_array) -> np.ndarray:
        """Offsets of new users from their ratings (same rule as the training baseline)."""
        return np.zeros(rows.shape[0], dtype=np.float32)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        rows = _csr(rows.astype(np.float32))
        bu = self._new_user_bias(rows)
        n_new = rows.shape[0]
        r_idx = np.repeat(np.arange(n_new), np.diff(rows.indptr))
        base_new = (self.global_mean_ + bu[:, None] + self.item_bias_[None, :]).astype(np.float32)
        resid = rows.copy()
        resid.data = (rows.data - base_new[r_idx, rows.indices]).astype(np.float32)
        if self.user_based:
            from ._similarity import cross_similarity, prune_rows

            sims = prune_rows(cross_similarity(resid, self.residuals_, "cosine", self.shrinkage), self.neighbors)
            num = _dense(sims @ self.residuals_)
            absw = sims.copy()
            absw.data = np.abs(absw.data)
            mask = self.residuals_.copy()
            mask.data = np.ones_like(mask.data)
            den = _dense(absw @ mask)
            off = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
            return base_new + off
        items = np.arange(self.n_items_)
        uu = np.repeat(np.arange(n_new), self.n_items_)
        ii = np.tile(items, n_new)
        off = self._offsets(uu, ii, resid=resid, rows_of=uu)
        return base_new + off.reshape(n_new, self.n_items_)


def _means(values: np.ndarray, index: np.ndarray, n: int, mu: float) -> np.ndarray:
    counts = np.bincount(index, minlength=n)
    sums = np.bincount(index, weights=values, minlength=n)
    return np.where(counts > 0, sums / np.maximum(counts, 1) - mu, 0.0).astype(np.float32)


_KNN_RATING_RULES = {"similarity": Choice(("pearson", "cosine")), "min_k": Int(lo=1)}


@register
class ItemKNNRating(_RatingKNN):
    """Item-based k-nearest-neighbour rating prediction.

    ``r_ui = m_i + sum_j s_ij (r_uj - m_j) / sum_j |s_ij|`` over the ``neighbors`` items
    rated by ``u`` most similar to ``i`` (positive similarities only), ``m_i`` being the
    item mean; ``similarity`` is Pearson correlation over common raters (default) or
    cosine; ``shrinkage`` multiplies Pearson by ``(n - 1) / (n - 1 + shrinkage)``.

    Sarwar, Karypis, Konstan, Riedl. Item-based collaborative filtering recommendation
    algorithms. WWW 2001.
    """

    name = "ItemKNNRating"
    paper = "Sarwar, Karypis, Konstan, Riedl. Item-based collaborative filtering recommendation algorithms. WWW 2001"
    rules = _KNN_RATING_RULES
    test_params = {"neighbors": 10}
    user_based = False
    state: ClassVar[dict[str, StateSpec]] = {
        "similarity_": Sparse(("n_items", "n_items")),
    }

    def __init__(self, neighbors: int = 50, shrinkage: float = 0.0, similarity: str = "pearson", min_k: int = 1) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.similarity = similarity
        self.min_k = min_k

    def _baselines(self, train: Interactions) -> tuple[np.ndarray, np.ndarray]:
        i = train.matrix.indices
        bi = _means(train.matrix.data.astype(np.float64), i, train.n_items, self.global_mean_)
        return np.zeros(train.n_users, dtype=np.float32), bi


@register
class UserKNNRating(_RatingKNN):
    """User-based k-nearest-neighbour rating prediction.

    ``r_ui = m_u + sum_v s_uv (r_vi - m_v) / sum_v |s_uv|`` over the ``neighbors`` users
    who rated ``i`` most similar to ``u`` (positive similarities only), ``m_u`` being the
    user mean; Pearson correlation over common items (default) or cosine.

    Resnick, Iacovou, Suchak, Bergstrom, Riedl. GroupLens: an open architecture for
    collaborative filtering of netnews. CSCW 1994.
    """

    name = "UserKNNRating"
    paper = "Resnick, Iacovou, Suchak, Bergstrom, Riedl. GroupLens: an open architecture for collaborative filtering of netnews. CSCW 1994"
    rules = _KNN_RATING_RULES
    test_params = {"neighbors": 10}
    user_based = True
    state: ClassVar[dict[str, StateSpec]] = {
        "similarity_": Sparse(("n_users", "n_users")),
    }

    def __init__(self, neighbors: int = 50, shrinkage: float = 0.0, similarity: str = "pearson", min_k: int = 1) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.similarity = similarity
        self.min_k = min_k

    def _baselines(self, train: Interactions) -> tuple[np.ndarray, np.ndarray]:
        u = train.user_index()
        bu = _means(train.matrix.data.astype(np.float64), u, train.n_users, self.global_mean_)
        return bu, np.zeros(train.n_items, dtype=np.float32)

    def _new_user_bias(self, rows: sp.csr_array) -> np.ndarray:
        n = np.diff(rows.indptr)
        sums = np.asarray(rows.sum(axis=1)).ravel()
        return np.where(n > 0, sums / np.maximum(n, 1) - self.global_mean_, 0.0).astype(np.float32)


@register
class KNNBaseline(_RatingKNN):
    """k-NN on top of baseline estimates, with Pearson-baseline similarity.

    ``r_ui = b_ui + sum_j s_ij (r_uj - b_uj) / sum_j s_ij`` over the ``neighbors`` most
    similar items rated by ``u`` (item-based by default; ``user_based=True`` swaps the
    roles). ``b_ui = mu + b_u + b_i`` is fitted by ``baseline_epochs`` rounds of
    alternating least squares with ``reg_item`` / ``reg_user``; the similarity is the
    Pearson correlation of baseline residuals over common raters, shrunk by
    ``(n - 1) / (n - 1 + shrinkage)``.

    Koren. Factor in the neighbors: scalable and accurate collaborative filtering.
    ACM TKDD 4(1), 2010.
    """

    name = "KNNBaseline"
    paper = "Koren. Factor in the neighbors: scalable and accurate collaborative filtering. ACM TKDD 2010"
    rules = {"min_k": Int(lo=1), "reg_user": Float(lo=0.0), "reg_item": Float(lo=0.0),
             "baseline_epochs": Int(lo=1), "user_based": Bool(), "min_support": Int(lo=1)}
    test_params = {"neighbors": 10}
    state: ClassVar[dict[str, StateSpec]] = {
        # item-item, or user-user when user_based
        "similarity_": Sparse(("n_neighbours", "n_neighbours")),
    }

    def __init__(
        self,
        neighbors: int = 40,
        shrinkage: float = 100.0,
        min_k: int = 1,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        baseline_epochs: int = 10,
        user_based: bool = False,
        min_support: int = 1,
    ) -> None:
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.min_k = min_k
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.baseline_epochs = baseline_epochs
        self.user_based = user_based
        self.min_support = min_support

    def _similarity_settings(self) -> tuple[str, float]:
        return "pearson", self.shrinkage

    def _baselines(self, train: Interactions) -> tuple[np.ndarray, np.ndarray]:
        u = train.user_index()
        i = train.matrix.indices
        r = train.matrix.data.astype(np.float64) - self.global_mean_
        n_u = np.bincount(u, minlength=train.n_users)
        n_i = np.bincount(i, minlength=train.n_items)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        for _ in range(self.baseline_epochs):
            bi = np.bincount(i, weights=r - bu[u], minlength=train.n_items) / (self.reg_item + n_i)
            bu = np.bincount(u, weights=r - bi[i], minlength=train.n_users) / (self.reg_user + n_u)
        return bu.astype(np.float32), bi.astype(np.float32)

    def _new_user_bias(self, rows: sp.csr_array) -> np.ndarray:
        n = np.diff(rows.indptr)
        r_idx = np.repeat(np.arange(rows.shape[0]), n)
        dev = rows.data - self.global_mean_ - self.item_bias_[rows.indices]
        return (np.bincount(r_idx, weights=dev, minlength=rows.shape[0]) / (self.reg_user + n)).astype(np.float32)
