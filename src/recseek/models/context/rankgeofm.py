"""RankGeoFM: ranking-based geographical factorisation for point-of-interest recommendation."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Float, Int
from ..base import Array, Recommender, Scalar, Sparse, StateSpec
from ..registry import register


@register
class RankGeoFM(Recommender):
    """Ranking-based geographical factorisation (Li, Cong, Li, Pham & Krishnaswamy 2015).

    The score of place ``l`` for user ``u`` adds a geographical term to the user-place
    preference:

        s(u, l) = U[u] . Q[l] + G[u] . sum_{l' in N(l)} w(l, l') Q[l']

    where ``N(l)`` are the ``neighbors`` nearest places of ``l`` (great-circle distance
    ``d``) with weights ``w = 1 / max(d, 0.5 km)`` normalised to sum 1. Training fits the
    ordering of check-in counts: for a check-in ``(u, l)``, negatives ``l'`` with fewer
    check-ins by ``u`` are drawn until one violates ``s(u, l') + margin > s(u, l)``; the
    pair's hinge-smoothed loss ``sigmoid(s(u, l') + margin - s(u, l))`` is weighted by
    ``E(floor(n_places / draws))`` (``E(n) = 1 + 1/2 + ... + 1/n``, the approximate-rank
    weight of WARP) and followed by one SGD step. Factor norms are bounded instead of
    penalised: ``||U[u]||, ||Q[l]|| <= radius`` and ``||G[u]|| <= alpha * radius``. As in
    JStarCraft RNS, scores inside an epoch use the factors (and the geographical sums)
    of the epoch's start.

    Needs the ``"item_locations"`` side data (``item_data`` columns ``latitude`` and
    ``longitude``, e.g. from :func:`recseek.data.readers.read_locations`); places without
    coordinates have no geographical term.

    Parameters
    ----------
    factors : int
        Latent dimensions (JStarCraft ``recommender.factor.number``).
    epochs : int
        Passes over the check-ins (``recommender.iterator.maximum``).
    learning_rate : float
        SGD step (``recommender.iterator.learnrate``).
    margin : float
        epsilon, the ranking margin (``recommender.ranking.margin``).
    radius : float
        C, the largest norm of a user or place factor (``recommender.regularization.radius``).
    alpha : float
        The share of ``radius`` allowed to the geographical user factors G
        (``recommender.regularization.balance``).
    neighbors : int
        k, nearest places of each place (``recommender.item.nearest.neighbour.number``).
    max_trials : int or None
        Negatives drawn per check-in before giving up (None: the number of places).
    init_std : float
        Standard deviation of the normal initialisation (``recommender.init.std``).
    seed : int or None
        Seed of the initialisation and of the negative draws.
    verbose : bool
        Show a progress bar with the epoch's loss.

    Learned state
    -------------
    user_factors_ U (n_users, factors), user_geo_factors_ G (n_users, factors),
    item_factors_ Q (n_items, factors), geo_influence_ (n_items, factors) = the weighted
    neighbour sums of Q, neighbor_weights_ (n_items, n_items) sparse. A new user is
    folded in by running the same SGD over the user's check-ins with the places fixed.
    """

    name = "RankGeoFM"
    task = "ranking"
    family: ClassVar[str] = "context"
    paper = ("Li, Cong, Li, Pham & Krishnaswamy. Rank-GeoFM: A Ranking based Geographical Factorization "
             "Method for Point of Interest Recommendation. SIGIR 2015")
    requires: ClassVar[tuple[str, ...]] = ("item_locations",)
    rules: ClassVar[dict[str, Any]] = {
        "margin": Float(lo=0.0), "radius": Float(lo=0.0, lo_open=True), "alpha": Float(lo=0.0, hi=1.0),
        "max_trials": Int(lo=1, none_ok=True),
    }
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "user_geo_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
        "geo_influence_": Array("float32", ("n_items", "factors")),
        "neighbor_weights_": Sparse(("n_items", "n_items")),
        "loss_": Scalar(float, finite=False),
    }
    test_params = {"factors": 16, "epochs": 30, "learning_rate": 0.05, "neighbors": 10}

    def __init__(self, factors: int = 100, epochs: int = 200, learning_rate: float = 0.001, margin: float = 0.3,
                 radius: float = 1.0, alpha: float = 0.2, neighbors: int = 300, max_trials: int | None = None,
                 init_std: float = 0.1, seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.margin = margin
        self.radius = radius
        self.alpha = alpha
        self.neighbors = neighbors
        self.max_trials = max_trials
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _neighbors(self, train: Interactions) -> sp.csr_array:
        from ._d_rankgeofm import nearest_places

        lat = np.asarray(train.item_data["latitude"], dtype=np.float64)
        lon = np.asarray(train.item_data["longitude"], dtype=np.float64)
        indptr, indices, weights = nearest_places(lat, lon, int(self.neighbors), 0.5)
        return sp.csr_array((weights, indices, indptr), shape=(self.n_items_, self.n_items_))

    def _fit(self, train: Interactions) -> None:
        from ._d_rankgeofm import rankgeofm_epoch, seed_kernels

        rng = np.random.default_rng(self.seed)
        seed_kernels(int(rng.integers(2**31 - 1)))
        k = int(self.factors)
        std = float(self.init_std)
        u = (std * rng.standard_normal((self.n_users_, k))).astype(np.float32)
        g = (std * rng.standard_normal((self.n_users_, k))).astype(np.float32)
        q = (std * rng.standard_normal((self.n_items_, k))).astype(np.float32)
        w = self._neighbors(train)
        m = sp.csr_array(train.matrix, dtype=np.float32)
        m.sort_indices()
        r_ptr, r_idx, r_val = m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float32)
        harmonic = np.zeros(self.n_items_ + 1, dtype=np.float32)
        harmonic[1:] = np.cumsum(1.0 / np.arange(1, self.n_items_ + 1))
        trials = self.n_items_ if self.max_trials is None else int(self.max_trials)
        f32 = np.float32
        self.loss_ = float("nan")
        bar = self._progress(range(int(self.epochs)), total=int(self.epochs))
        for epoch in bar:
            geo = np.ascontiguousarray(w @ q, dtype=np.float32)
            loss = rankgeofm_epoch(r_ptr, r_idx, r_val, u, g, q, geo, u.copy(), g.copy(), q.copy(), harmonic,
                                   f32(self.learning_rate), f32(self.margin), f32(self.radius), f32(self.alpha),
                                   trials)
            self._check_finite(epoch, np.asarray(loss), u, g, q)
            self.loss_ = float(loss)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss:.4g}")
        self.user_factors_, self.user_geo_factors_, self.item_factors_ = u, g, q
        self.geo_influence_ = np.ascontiguousarray(w @ q, dtype=np.float32)
        self.neighbor_weights_ = w

    def _scores(self, u: np.ndarray, g: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        q = self.item_factors_ if items is None else self.item_factors_[items]
        geo = self.geo_influence_ if items is None else self.geo_influence_[items]
        return (u @ q.T + g @ geo.T).astype(np.float32, copy=False)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        return self._scores(self.user_factors_[users], self.user_geo_factors_[users], items)

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        from ._d_rankgeofm import rankgeofm_epoch, seed_kernels

        rows = sp.csr_array(rows, dtype=np.float32)
        rows.sort_indices()
        n, k = rows.shape[0], int(self.factors)
        rng = np.random.default_rng(self.seed)
        seed_kernels(int(rng.integers(2**31 - 1)))
        u = (float(self.init_std) * rng.standard_normal((n, k))).astype(np.float32)
        g = (float(self.init_std) * rng.standard_normal((n, k))).astype(np.float32)
        harmonic = np.zeros(self.n_items_ + 1, dtype=np.float32)
        harmonic[1:] = np.cumsum(1.0 / np.arange(1, self.n_items_ + 1))
        trials = self.n_items_ if self.max_trials is None else int(self.max_trials)
        f32 = np.float32
        for _ in range(int(self.epochs)):
            # the places stay fixed: the kernel updates a throw-away copy of Q
            rankgeofm_epoch(rows.indptr.astype(np.int64), rows.indices.astype(np.int64), rows.data, u, g,
                            self.item_factors_.copy(), self.geo_influence_, u.copy(), g.copy(), self.item_factors_,
                            harmonic, f32(self.learning_rate), f32(self.margin), f32(self.radius),
                            f32(self.alpha), trials)
        return self._scores(u, g, None)

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_
