"""SoReg: matrix factorisation with social regularisation (Ma et al., 2011)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...data._interactions import Interactions
from .._params import Float
from ..registry import register
from ._base import EpochBar, SocialRatingModel, row_normalised, sq


def link_similarity(r: sp.csr_array, trust: sp.csr_array) -> sp.csr_array:
    """Cosine (vector space) similarity of the rating rows of every linked pair, mapped to
    [0, 1] by ``(1 + s) / 2``; the CSR has the pattern of ``trust + trust.T``."""
    links = sp.csr_array(((trust + trust.T) > 0).astype(np.float32))
    links.sort_indices()
    rows = np.repeat(np.arange(links.shape[0]), np.diff(links.indptr))
    cols = links.indices
    norms = np.sqrt(np.asarray(r.multiply(r).sum(axis=1)).ravel())
    dots = np.asarray(r[rows].multiply(r[cols]).sum(axis=1)).ravel() if len(rows) else np.zeros(0)
    denom = norms[rows] * norms[cols]
    sim = np.divide(dots, denom, out=np.zeros_like(dots, dtype=np.float64), where=denom > 0)
    data = ((1.0 + sim) / 2.0).astype(np.float32)
    return sp.csr_array((data, cols.astype(np.int32), links.indptr), shape=links.shape)


@register
class SoReg(SocialRatingModel):
    """SoReg: friends' factors are kept close in proportion to how alike they rate.

    Objective (Ma, Zhou, Liu, Lyu & King 2011, model 2, individual-based regularisation),
    minimised by full gradient descent::

        1/2 sum_(u,i) (mu + u_u . v_i - r_ui)^2 + reg_user/2 |U|^2 + reg_item/2 |V|^2
            + beta/2 sum_u sum_(f in F+(u)) sim(u, f) |u_u - u_f|^2

    ``F+(u)``: the users ``u`` trusts; ``sim``: the vector space (cosine) similarity of
    the two users' rating rows mapped to [0, 1] by ``(1 + s) / 2``, as in the paper. The
    gradient of a user's factors collects the term both as truster and as trustee
    (``F-``). Ratings are centred on the training mean ``mu`` (the paper factorises the raw
    ratings; centring lets small initial factors start at the mean). Predictions are
    ``mu + u_u . v_i`` clipped to the rating range.

    Parameters
    ----------
    factors, epochs, learning_rate : int, int, float
        Latent dimensions, gradient steps, step size (JStarCraft
        ``recommender.factor.number``, ``iterator.maximum``, ``iterator.learnrate``).
    reg_user, reg_item : float
        L2 weights of ``U`` (n_users, factors) and ``V`` (n_items, factors).
    beta : float
        Weight of the social regularisation (``recommender.social.regularization``).
    init_range : float
        Initial factors are drawn uniformly from ``[-init_range / 2, init_range / 2)``.
    seed : int or None
        Random seed of the initialisation.
    verbose : bool
        Progress bar with the loss.

    Social cold start (:meth:`recommend_for_trust`): a user with no ratings minimises the
    social term alone, whose solution is the trust-weighted mean of the friends' factors.
    """

    name = "SoReg"
    paper = ("Ma, Zhou, Liu, Lyu & King. Recommender Systems with Social Regularization. WSDM 2011")
    logistic = False
    rules = {"beta": Float(lo=0.0), "init_range": Float(lo=0.0, lo_open=True)}
    test_params = {"factors": 8, "epochs": 200, "learning_rate": 0.02}

    def __init__(self, factors: int = 10, epochs: int = 100, learning_rate: float = 0.001, reg_user: float = 0.001,
                 reg_item: float = 0.001, beta: float = 0.1, init_range: float = 0.2, seed: int | None = 0,
                 verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.beta = beta
        self.init_range = init_range
        self.seed = seed
        self.verbose = verbose

    def _init(self, rng: np.random.Generator, n: int) -> np.ndarray:
        h = 0.5 * float(self.init_range)
        return rng.uniform(-h, h, (n, int(self.factors))).astype(np.float32)

    def _fit(self, train: Interactions) -> None:
        from ._kernels import pair_gradient

        r, targets, trust, rng = self._prepare(train)
        # sim over F+ (links u -> f) and F- (f -> u): each directed link counts for both ends
        sim = link_similarity(r, trust)
        directed = sp.csr_array(sim.multiply(trust > 0))
        w = sp.csr_array(directed + directed.T)
        w.sort_indices()
        wsum = np.asarray(w.sum(axis=1)).ravel().astype(np.float32)[:, None]
        u = self._init(rng, train.n_users)
        v = self._init(rng, train.n_items)
        k = u.shape[1]
        lr = np.float32(self.learning_rate)
        parts = self._parts(train.n_items, k)
        zero = np.float32(0.0)
        bar = EpochBar(self, int(self.epochs))
        loss = 0.0
        for epoch in range(int(self.epochs)):
            gu = np.zeros_like(u)
            err = pair_gradient(r.indptr, r.indices, targets, u, v, False, np.float32(1.0), zero, zero, gu, parts)
            gv = parts.sum(axis=0)
            gu += np.float32(self.reg_user) * u + np.float32(self.beta) * (wsum * u - w @ u)
            gv += np.float32(self.reg_item) * v
            u -= lr * gu
            v -= lr * gv
            self._check_finite(epoch, u, v)
            loss = 0.5 * (err + self.reg_user * sq(u) + self.reg_item * sq(v))
            bar.update(loss)
        bar.close()
        self.loss_ = float(loss)
        self.user_factors_ = np.ascontiguousarray(u, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(v, dtype=np.float32)

    def _trust_vectors(self, rows: sp.csr_array) -> np.ndarray:
        return np.asarray(row_normalised(rows) @ self.user_factors_, dtype=np.float32)
