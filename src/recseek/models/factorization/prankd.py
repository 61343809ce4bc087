"""PRankD: personalised ranking with diversity."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from .._params import Bool, Float, Int
from ..base import Array, Recommender, StateSpec
from ..registry import register


@register
class PRankD(Recommender):
    """Personalised ranking with diversity (RankSGD with a dissimilarity-scaled margin).

    A matrix factorisation ``r_ui = p_u . q_i`` trained by SGD on pairs: for each observed
    ``(u, i)`` an unobserved ``j`` is drawn with probability proportional to its
    popularity and ``w_j (r_ui - r_uj - d_ij x_ui)^2`` is minimised, where
    ``d_ij = sqrt(1 - tanh(sim_filter * cos(i, j)))`` asks for a larger margin against
    dissimilar items and ``w_j`` is ``j``'s popularity relative to the most popular item.
    Cosine similarities keep the ``neighbors`` most similar items of each item. Popular
    items are both sampled and weighted more as negatives, so the model trades accuracy
    for novelty: long training lowers precision while raising diversity.

    Hurley. Personalised ranking with diversity. RecSys 2013.
    """

    name = "PRankD"
    family = "factorization"
    paper = "Hurley. Personalised ranking with diversity. RecSys 2013"
    rules = {"sim_filter": Float(lo=0.0), "binary": Bool(), "init_std": Float(lo=0.0),
             "neighbors": Int(lo=1)}
    test_params = {"factors": 8, "epochs": 20}
    state: ClassVar[dict[str, StateSpec]] = {
        "user_factors_": Array("float32", ("n_users", "factors")),
        "item_factors_": Array("float32", ("n_items", "factors")),
    }

    def __init__(
        self,
        factors: int = 10,
        epochs: int = 20,
        learning_rate: float = 0.05,
        reg: float = 0.0,
        sim_filter: float = 4.0,
        neighbors: int = 200,
        binary: bool = False,
        init_std: float = 0.01,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.sim_filter = sim_filter
        self.neighbors = neighbors
        self.binary = binary
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ..neighborhood._similarity import pairwise_topk
        from ._prankd import prankd_epoch

        m = sp.csr_array(train.matrix, dtype=np.float64, copy=True)
        m.sort_indices()
        if self.binary:
            m.data = np.ones_like(m.data)
        b = m.copy()
        b.data = np.ones_like(b.data)
        bt = sp.csr_array(b.T)
        bt.sort_indices()
        sims = pairwise_topk(bt, "cosine", self.neighbors, 0.0)
        sims = sp.csr_array(sims + sims.T)  # symmetric lookup (either side kept the pair)
        sims.data = np.minimum(sims.data, 1.0)
        sims.sort_indices()
        pop = np.diff(bt.indptr).astype(np.float64)
        weights = pop / max(pop.max(), 1.0)
        rng = np.random.default_rng(self.seed)
        p = rng.normal(0.0, self.init_std, (train.n_users, self.factors))
        q = rng.normal(0.0, self.init_std, (train.n_items, self.factors))
        base = int(self.seed or 0) * 1_000_003
        for epoch in self._progress(range(self.epochs), total=self.epochs):
            prankd_epoch(m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data, p, q,
                         np.cumsum(pop), weights, sims.indptr.astype(np.int64), sims.indices.astype(np.int32),
                         sims.data.astype(np.float64), float(self.sim_filter), float(self.learning_rate),
                         float(self.reg), base + epoch * (train.n_users + 1))
            self._check_finite(epoch + 1, p, q)
        self.user_factors_ = p.astype(np.float32)
        self.item_factors_ = q.astype(np.float32)

    def _score(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        q = self.item_factors_ if items is None else self.item_factors_[items]
        return self.user_factors_[users] @ q.T

    def _score_new(self, rows: sp.csr_array) -> np.ndarray:
        """New users' factors by ridge regression of their values on the item factors."""
        rows = sp.csr_array(rows, dtype=np.float64)
        if self.binary:
            rows.data = np.ones_like(rows.data)
        q = self.item_factors_.astype(np.float64)
        k = q.shape[1]
        owner = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        qi = q[rows.indices]
        a = np.zeros((rows.shape[0], k, k))
        np.add.at(a, owner, qi[:, :, None] * qi[:, None, :])
        a += (self.reg + 1e-3) * np.eye(k)[None]
        rhs = np.asarray(rows @ q)
        pu = np.linalg.solve(a, rhs[:, :, None])[:, :, 0]
        return (pu @ q.T).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def user_vectors(self) -> np.ndarray:
        return self.user_factors_
