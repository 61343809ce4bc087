"""Pairwise ranking factorization with other losses: RankSGD (squared) and WARPMF (WARP)."""

from __future__ import annotations

import numpy as np

from ...data._interactions import Interactions
from .._params import Float, Int
from ..registry import register
from ._base import COMMON_RULES, FactorRanker
from .bpr import run_pairwise


@register
class RankSGD(FactorRanker):
    """Ranking SGD: for every training pair (u, i) and an item j drawn in proportion to
    popularity among the items u has not interacted with, minimise
    ``((x_ui - x_uj) - (r_ui - 0))^2 / 2`` (pairwise squared error on the ratings),
    one pass over the interactions per epoch.

    Reference: Jahrer, Töscher, "Collaborative Filtering Ensemble for Ranking",
    JMLR W&CP 18 (KDD Cup 2011), 2012.
    """

    name = "RankSGD"
    paper = ("Jahrer, Töscher. Collaborative Filtering Ensemble for Ranking. JMLR Workshop and Conference "
             "Proceedings 18 (KDD Cup 2011), 2012")
    rules = {**COMMON_RULES}
    test_params = {"factors": 8, "epochs": 30, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 10,
        epochs: int = 30,
        learning_rate: float = 0.01,
        reg: float = 0.0,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import LOSS_SQUARED, NEG_CDF

        self._init_factors(train.n_users, train.n_items, self._rng())
        pop = np.bincount(train.matrix.indices, minlength=train.n_items).astype(np.float64)
        items = np.flatnonzero(pop > 0).astype(np.int64)
        law = {"neg_mode": NEG_CDF, "cdf": np.cumsum(pop[items]), "cdf_items": items}
        run_pairwise(self, train, LOSS_SQUARED, law, use_bias=False, sweep=True)


@register
class WARPMF(FactorRanker):
    """Matrix factorization trained with the WARP loss (Weighted Approximate-Rank Pairwise).

    For a positive pair (u, i), negatives are drawn uniformly until one violates the
    margin (``x_uj > x_ui - margin``) or ``max_trials`` draws fail; after N draws the
    rank of i is estimated as ``floor((n_items - |I_u| - 1) / N)`` and the hinge
    ``margin - x_ui + x_uj`` is minimised with weight ``L(rank) = sum_{k<=rank} 1/k``
    (normalised by its maximum), which focuses learning on the top of the list.

    Reference: Weston, Bengio, Usunier, "WSABIE: Scaling Up To Large Vocabulary Image
    Annotation", IJCAI 2011.
    """

    name = "WARPMF"
    paper = "Weston, Bengio, Usunier. WSABIE: Scaling Up To Large Vocabulary Image Annotation. IJCAI 2011"
    rules = {**COMMON_RULES, "margin": Float(lo=0.0), "max_trials": Int(lo=1)}
    test_params = {"factors": 8, "epochs": 10, "learning_rate": 0.05}

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 30,
        learning_rate: float = 0.05,
        reg: float = 0.01,
        margin: float = 1.0,
        max_trials: int = 100,
        sampling: str = "interaction",
        samples_per_epoch: int | None = None,
        init_std: float = 0.1,
        seed: int | None = 0,
        verbose: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.margin = margin
        self.max_trials = max_trials
        self.sampling = sampling
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._kernels import LOSS_WARP, NEG_UNIFORM

        self._init_factors(train.n_users, train.n_items, self._rng())
        n = max(train.n_items, 2)
        weights = np.cumsum(1.0 / np.arange(1, n, dtype=np.float64))
        weights = np.concatenate([[0.0], weights]) / weights[-1]
        # rank 0 (the positive already above every negative) still gets a small weight
        weights[0] = weights[1]
        run_pairwise(self, train, LOSS_WARP, {"neg_mode": NEG_UNIFORM}, use_bias=False,
                     margin=float(self.margin), max_trials=int(self.max_trials),
                     rank_weights=weights.astype(np.float32))
