"""SBPR: social Bayesian personalised ranking (Zhao, McAuley & King, 2014)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float, Int
from ..ranking._base import FactorRanker, dynamic_schedule
from ..registry import register
from ._base import EpochBar, TrustColdStart, row_normalised, trust_matrix


def social_items(seen: sp.csr_array, trust: sp.csr_array) -> sp.csr_array:
    """Per user, the items their trusted users took that they did not, valued by how many
    trusted users took each (float32 CSR, sorted indices)."""
    pattern = sp.csr_array((np.ones(trust.nnz, np.float32), trust.indices, trust.indptr), shape=trust.shape)
    counts = sp.csr_array(pattern @ seen)
    counts = sp.csr_array(counts - counts.multiply(seen > 0))
    counts.eliminate_zeros()
    counts.sort_indices()
    return counts


@register
class SBPR(TrustColdStart, FactorRanker):
    """SBPR: a user ranks their own items above their friends' items, and those above the rest.

    For user ``u`` with items ``P_u`` and social items ``SP_u`` (taken by users ``u``
    trusts, not by ``u``; ``s_uk`` of them took ``k``), SBPR maximises (Zhao, McAuley &
    King 2014, eq. 8)::

        sum ln sigmoid((x_ui - x_uk) / (1 + s_uk)) + ln sigmoid(x_uk - x_uj)
            - reg |U|^2 - reg |V|^2 - reg_bias |b|^2

    over draws of a user (uniformly among users with items), ``i`` in ``P_u``, ``k`` in
    ``SP_u`` and ``j`` outside both, with ``x_ui = b_i + u_u . v_i``; users without
    social items take the BPR pair ``(i, j)``. Stochastic gradient ascent.

    Parameters
    ----------
    factors : int
        Latent dimensions (JStarCraft ``recommender.factor.number``).
    epochs : int
        Passes (``recommender.iterator.maximum``).
    learning_rate : float
        SGD step (``recommender.iterator.learnrate``).
    reg, reg_bias : float
        L2 weights of the factors (JStarCraft's user and item regularisation) and of the
        item biases (``recommender.bias.regularization``).
    samples_per_epoch : int or None
        Draws per epoch (None: 100 per user, JStarCraft's choice).
    init_std : float
        Standard deviation of the normal initial factors.
    seed : int or None
        Random seed (initialisation and draws).
    verbose : bool
        Progress bar.

    State: ``user_factors_`` (n_users, factors), ``item_factors_`` (n_items, factors),
    ``item_bias_`` (n_items,). New users with items fold in by BPR steps
    (:meth:`recommend_new`); new users with trust links only (:meth:`recommend_for_trust`)
    get the trust-weighted mean of the trusted users' factors, which ranks the items their
    friends prefer first, as SBPR's ordering asks.
    """

    name = "SBPR"
    family: ClassVar[str] = "social"
    requires: ClassVar[tuple[str, ...]] = ("trust",)
    paper = ("Zhao, McAuley & King. Leveraging Social Connections to Improve Personalized Ranking for "
             "Collaborative Filtering. CIKM 2014")
    rules = {"reg_bias": Float(lo=0.0), "init_std": Float(lo=0.0), "samples_per_epoch": Int(lo=1, none_ok=True)}
    test_params = {"factors": 8, "epochs": 30, "learning_rate": 0.05}

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.01, reg: float = 0.01,
                 reg_bias: float = 0.01, samples_per_epoch: int | None = None, init_std: float = 0.1,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.samples_per_epoch = samples_per_epoch
        self.init_std = init_std
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ..ranking._kernels import chunk_seeds
        from ._kernels import sbpr_epoch

        trust = trust_matrix(self.display_name, train)
        self._init_factors(train.n_users, train.n_items, self._rng())
        indptr, indices = self._seen_arrays()
        social = social_items(self.seen_, trust)
        s_indptr = np.asarray(social.indptr, dtype=np.int64)
        s_indices = np.asarray(social.indices, dtype=np.int32)
        s_counts = np.asarray(social.data, dtype=np.float32)
        active = np.flatnonzero(np.diff(indptr) > 0).astype(np.int32)
        n_samples = int(self.samples_per_epoch) if self.samples_per_epoch is not None else 100 * train.n_users
        n_chunks = self._n_chunks(n_samples)
        f32 = np.float32
        lr, reg, reg_b = f32(self.learning_rate), f32(self.reg), f32(self.reg_bias)
        seed = int(self.seed or 0)
        bar = EpochBar(self, int(self.epochs))
        for epoch in range(int(self.epochs)):
            with dynamic_schedule():
                loss = sbpr_epoch(self.user_factors_, self.item_factors_, self.item_bias_, indptr, indices, s_indptr,
                                  s_indices, s_counts, active, n_samples, lr, reg, reg, reg_b,
                                  chunk_seeds(seed, epoch, n_chunks))
            bar.update(float(loss) / max(n_samples, 1))
            self._check_epoch(epoch)
        bar.close()

    def _trust_vectors(self, rows: sp.csr_array) -> np.ndarray:
        return np.asarray(row_normalised(rows) @ self.user_factors_, dtype=np.float32)

    def _score_vectors(self, vectors: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        v = self.item_factors_ if items is None else self.item_factors_[items]
        b = self.item_bias_ if items is None else self.item_bias_[items]
        return (vectors @ v.T + b[None, :]).astype(np.float32)
