"""Latent Dirichlet Co-Clustering (LDCC) for rating prediction, by collapsed Gibbs sampling."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from .._params import Int
from ..base import Array
from ..registry import register
from ._b_common import GIBBS_RULES, MixtureRater, mixture_state, positive, progress_bar, readout_sweeps, sweep_seeds


@register
class LDCC(MixtureRater):
    """Latent Dirichlet Co-Clustering: users and items each belong to a mixture of
    clusters, and every (user cluster, item cluster) pair has its own rating distribution.

    Generative model (K user clusters, L item clusters): each user draws
    ``pi_u ~ Dir(alpha_user)`` over user clusters, each item ``pi_i ~ Dir(alpha_item)``
    over item clusters, each pair of clusters a rating distribution
    ``theta_kl ~ Dir(beta)``. A rating of item ``i`` by user ``u`` draws ``k ~ pi_u``,
    ``l ~ pi_i`` and ``r ~ theta_kl``. Prediction:
    ``E[r | u, i] = sum_r r sum_kl pi_uk pi_il theta_klr``.

    Inference: collapsed Gibbs sampling of every rating's cluster pair, drawn jointly,
    ``p(k, l | rest) ∝ (n_uk + alpha_user) (n_il + alpha_item) (n_klr + beta) /
    (n_kl + R beta)``; after ``burn_in`` sweeps the posterior means are averaged over
    every ``sample_lag``-th sweep. Sweeps run over chunks of users with private copies of
    the item and cluster-pair tables merged per sweep (one chunk, exact sampling, below
    200,000 ratings); a seed reproduces a fit on any number of threads.

    Parameters
    ----------
    user_clusters : int
        K (JStarCraft ``recommender.pgm.number.users``).
    item_clusters : int
        L (``recommender.pgm.number.items``).
    epochs : int
        Gibbs sweeps (``recommender.iterator.maximum``).
    burn_in, sample_lag : int
        Sweeps before sampling and between samples (``recommender.pgm.burnin``,
        ``recommender.pgm.samplelag``).
    alpha_user, alpha_item : float or None
        Symmetric Dirichlet priors of the user and item cluster mixtures (None:
        ``1 / user_clusters`` and ``1 / item_clusters``, JStarCraft's defaults;
        ``recommender.pgm.user.alpha``, ``.item.alpha``).
    beta : float or None
        Symmetric Dirichlet prior of the rating distributions (None: one over the number
        of rating levels; ``recommender.pgm.rating.beta``).
    seed : int or None
        Seed of the initial assignments and of the sampler.
    verbose : bool
        Progress bar with the collapsed log-likelihood per rating.

    Learned state
    -------------
    user_topics_ : (n_users, user_clusters)
        ``pi_u``, posterior mean.
    item_topics_ : (n_items, item_clusters)
        ``pi_i``, posterior mean (the item vectors of ``similar_items``).
    cluster_levels_ : (user_clusters, item_clusters, n_levels)
        ``theta_klr``, posterior mean.
    item_levels_ : (user_clusters, n_items, n_levels)
        ``p(r | k, i) = sum_l pi_il theta_klr``.
    levels_ : (n_levels,)
        The distinct training ratings.
    prior_ : (user_clusters,)
        ``alpha_user`` (used to fold in new users by EM on their cluster mixture).

    Reference: Porteous, Bart & Welling. Multi-HDP: A Non Parametric Bayesian Model for
    Tensor Factorization. AAAI 2008 (LDCC is its finite, parametric model).
    """

    name = "LDCC"
    paper = ("Porteous, Bart & Welling. Multi-HDP: A Non Parametric Bayesian Model for Tensor "
             "Factorization. AAAI 2008")
    rules: ClassVar[dict] = {
        **GIBBS_RULES, "user_clusters": Int(lo=1), "item_clusters": Int(lo=1),
        "alpha_user": positive(none_ok=True), "alpha_item": positive(none_ok=True), "beta": positive(none_ok=True),
    }
    test_params: ClassVar[dict] = {"user_clusters": 8, "item_clusters": 8, "epochs": 100, "burn_in": 50,
                                   "sample_lag": 5}
    divergence_hint: ClassVar[str] = "raise alpha_user, alpha_item or beta"
    state: ClassVar[dict] = {
        **mixture_state("user_clusters", "item_clusters"),
        "cluster_levels_": Array("float32", ("user_clusters", "item_clusters", "n_levels")),
    }

    def __init__(self, user_clusters: int = 10, item_clusters: int = 10, epochs: int = 100, burn_in: int = 10,
                 sample_lag: int = 10, alpha_user: float | None = None, alpha_item: float | None = None,
                 beta: float | None = None, seed: int | None = 0, verbose: bool = False) -> None:
        self.user_clusters = user_clusters
        self.item_clusters = item_clusters
        self.epochs = epochs
        self.burn_in = burn_in
        self.sample_lag = sample_lag
        self.alpha_user = alpha_user
        self.alpha_item = alpha_item
        self.beta = beta
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._b_gibbs import ldcc_sweep

        self._check_schedule()
        shared = int(self.item_clusters) * (1 + int(self.user_clusters))
        indptr, indices, lev, chunks = self._training_arrays(train, shared)
        K, L = int(self.user_clusters), int(self.item_clusters)
        n_users, n_items, R = train.n_users, train.n_items, self.levels_.shape[0]
        au = 1.0 / K if self.alpha_user is None else float(self.alpha_user)
        ai = 1.0 / L if self.alpha_item is None else float(self.alpha_item)
        b = 1.0 / R if self.beta is None else float(self.beta)
        rng = np.random.default_rng(self.seed)
        zu = rng.integers(0, K, indices.shape[0]).astype(np.int32)
        zi = rng.integers(0, L, indices.shape[0]).astype(np.int32)
        users = np.repeat(np.arange(n_users), np.diff(indptr))
        nuk = np.zeros((n_users, K), np.int32)
        np.add.at(nuk, (users, zu), 1)
        nil = np.zeros((n_items, L), np.int32)
        np.add.at(nil, (indices, zi), 1)
        nklr = np.zeros((K, L, R), np.int32)
        np.add.at(nklr, (zu, zi, lev), 1)
        nkl = nklr.sum(axis=2).astype(np.int32)
        n_u = np.diff(indptr).astype(np.float64)
        n_i = np.bincount(indices, minlength=n_items).astype(np.float64)
        pu_sum = np.zeros((n_users, K))
        pi_sum = np.zeros((n_items, L))
        th_sum = np.zeros((K, L, R))
        picks = readout_sweeps(int(self.epochs), int(self.burn_in), int(self.sample_lag))
        history = []
        # the serial twin unless there are chunks to share among threads
        sweep_kernel = ldcc_sweep.variant(chunks.shape[0] > 2)
        with progress_bar(self, int(self.epochs)) as step:
            for sweep in range(1, int(self.epochs) + 1):
                ll = sweep_kernel(chunks, indptr, indices, lev, zu, zi, nuk, nil, nklr, nkl, au, ai, b,
                                sweep_seeds(self.seed, sweep, chunks.shape[0] - 1))
                ll = float(ll) / max(1, indices.shape[0])
                self._check_sweep(sweep, ll)
                history.append(ll)
                step(ll)
                if sweep in picks:
                    pu_sum += (nuk + au) / (n_u[:, None] + K * au)
                    pi_sum += (nil + ai) / (n_i[:, None] + L * ai)
                    th_sum += (nklr + b) / (nkl[:, :, None] + R * b)
        n = len(picks)
        pu, pi, th = pu_sum / n, pi_sum / n, th_sum / n
        self._check_sweep(int(self.epochs), 0.0, pu, pi, th)
        self.user_topics_ = pu.astype(np.float32)
        self.item_topics_ = pi.astype(np.float32)
        self.cluster_levels_ = th.astype(np.float32)
        self.item_levels_ = np.einsum("il,klr->kir", pi, th).astype(np.float32)
        self.prior_ = np.full(K, au, dtype=np.float32)
        self.log_likelihood_ = np.asarray(history, dtype=np.float64)
