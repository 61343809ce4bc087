"""Balanced hierarchical co-clustering, "free" variant (BH-free), for rating prediction and
ranking, by collapsed Gibbs sampling."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from .._params import Int
from ..base import Array
from ..registry import register
from ._b_common import (
    GIBBS_RULES,
    MixtureRanker,
    MixtureRater,
    mixture_state,
    positive,
    progress_bar,
    readout_sweeps,
    sweep_seeds,
)

_PAPER = ("Barbieri, Costa, Manco & Ritacco. Balancing Prediction and Recommendation Accuracy: "
          "Hierarchical Latent Factors for Preference Data. SDM 2012")

_DOC = """

    Generative model (K user communities, L item categories): each user draws community
    weights ``pi_u ~ Dir(alpha)``; each community a distribution over categories
    ``psi_k ~ Dir(beta)``; each (community, category) pair a distribution over items
    ``phi_kl ~ Dir(sigma)`` and one over rating levels ``eps_kl ~ Dir(gamma)``. An
    observed rating draws ``k ~ pi_u``, ``l ~ psi_k``, the item ``i ~ phi_kl`` and the
    rating ``r ~ eps_kl`` (the "free" variant: the rating depends on the co-cluster
    only, not on the item). So ``p(i, r | u) = sum_kl pi_uk psi_kl phi_kli eps_klr``.

    Inference: collapsed Gibbs sampling of every rating's (k, l), drawn jointly from
    ``p(k, l | rest) ∝ (n_uk + alpha) (n_kl + beta) / (n_k + L beta) (n_klr + gamma) /
    (n_kl + R gamma) (n_kli + sigma) / (n_kl + n_items sigma)``; after ``burn_in`` sweeps
    the posterior means are averaged over every ``sample_lag``-th sweep. Sweeps run over
    chunks of users with private copies of the co-cluster tables, merged per sweep (one
    chunk, exact sampling, below 200,000 ratings); a seed reproduces a fit on any number
    of threads.

    JStarCraft's sampler differs from the paper in two ways that make its published
    figures those of a baseline: it fills the K x L table of the conditional with one
    value (the current assignment's), so every sweep redraws (k, l) uniformly at random,
    and it draws k and l from the table's margins separately; its rating prediction also
    leaves out ``phi_kli``. Its BHFreeRating therefore predicts the global average and
    its BHFreeRanking ranks by popularity. This implementation follows the paper.

    Parameters
    ----------
    user_clusters : int
        K (JStarCraft ``recommender.bhfree.user.topic.number``).
    item_clusters : int
        L (``recommender.bhfree.item.topic.number``).
    epochs : int
        Gibbs sweeps (``recommender.iterator.maximum``).
    burn_in, sample_lag : int
        Sweeps before sampling and between samples (``recommender.pgm.burnin``,
        ``recommender.pgm.samplelag``).
    alpha, beta, gamma : float
        Symmetric Dirichlet priors of the community weights, of the category
        distributions and of the rating distributions (``recommender.bhfree.alpha``,
        ``.beta``, ``.gamma``).
    sigma : float or None
        Symmetric Dirichlet prior of the item distributions (None: ``1 / n_items``;
        JStarCraft reads it from ``recommender.sigma``, which its settings leave unset,
        so it runs with that default).
    seed : int or None
        Seed of the initial assignments and of the sampler.
    verbose : bool
        Progress bar with the collapsed log-likelihood per rating.

    Learned state
    -------------
    user_topics_ : (n_users, user_clusters)
        ``pi_u``, posterior mean.
    category_weights_ : (user_clusters, item_clusters)
        ``psi``, posterior mean.
    category_items_ : (user_clusters, item_clusters, n_items)
        ``phi``, posterior mean.
    category_levels_ : (user_clusters, item_clusters, n_levels)
        ``eps``, posterior mean.
    item_levels_ : (user_clusters, n_items, n_levels)
        ``p(i, r | k) = sum_l psi_kl phi_kli eps_klr``.
    item_topics_ : (n_items, user_clusters * item_clusters)
        ``p(k, l | i)``, the item's co-cluster distribution (``similar_items``).
    levels_ : (n_levels,)
        The distinct training ratings.
    prior_ : (user_clusters,)
        ``alpha`` (used to fold in new users by EM on their community weights).
    """


class _BHFreeSampler:
    """The BH-free Gibbs sampler shared by the rating and ranking variants."""

    rules: ClassVar[dict] = {
        **GIBBS_RULES, "user_clusters": Int(lo=1), "item_clusters": Int(lo=1), "alpha": positive(),
        "beta": positive(), "gamma": positive(), "sigma": positive(none_ok=True),
    }
    # four planted blocks need more clusters and sweeps than four of each to be found reliably
    test_params: ClassVar[dict] = {"user_clusters": 8, "item_clusters": 8, "epochs": 100, "burn_in": 50,
                                   "sample_lag": 5}
    divergence_hint: ClassVar[str] = "raise alpha, beta, gamma or sigma"
    state: ClassVar[dict] = {
        **mixture_state("user_clusters", "n_coclusters"),
        "category_weights_": Array("float32", ("user_clusters", "item_clusters")),
        "category_items_": Array("float32", ("user_clusters", "item_clusters", "n_items")),
        "category_levels_": Array("float32", ("user_clusters", "item_clusters", "n_levels")),
    }

    def __init__(self, user_clusters: int = 10, item_clusters: int = 10, epochs: int = 100, burn_in: int = 10,
                 sample_lag: int = 10, alpha: float = 0.01, beta: float = 0.01, gamma: float = 0.01,
                 sigma: float | None = None, seed: int | None = 0, verbose: bool = False) -> None:
        self.user_clusters = user_clusters
        self.item_clusters = item_clusters
        self.epochs = epochs
        self.burn_in = burn_in
        self.sample_lag = sample_lag
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.sigma = sigma
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._b_gibbs import bhfree_sweep

        self._check_schedule()
        shared = 2 * int(self.user_clusters) * int(self.item_clusters)
        indptr, indices, lev, chunks = self._training_arrays(train, shared)
        K, L = int(self.user_clusters), int(self.item_clusters)
        n_users, n_items, R = train.n_users, train.n_items, self.levels_.shape[0]
        a, b, g = float(self.alpha), float(self.beta), float(self.gamma)
        s = 1.0 / n_items if self.sigma is None else float(self.sigma)
        rng = np.random.default_rng(self.seed)
        zu = rng.integers(0, K, indices.shape[0]).astype(np.int32)
        zi = rng.integers(0, L, indices.shape[0]).astype(np.int32)
        users = np.repeat(np.arange(n_users), np.diff(indptr))
        nuk = np.zeros((n_users, K), np.int32)
        np.add.at(nuk, (users, zu), 1)
        nklr = np.zeros((K, L, R), np.int32)
        np.add.at(nklr, (zu, zi, lev), 1)
        nikl = np.zeros((n_items, K, L), np.int32)  # item-major
        np.add.at(nikl, (indices, zu, zi), 1)
        nkl = nklr.sum(axis=2).astype(np.int32)
        nk = nkl.sum(axis=1).astype(np.int32)
        n_u = np.diff(indptr).astype(np.float64)
        pu_sum = np.zeros((n_users, K))
        psi_sum = np.zeros((K, L))
        phi_sum = np.zeros((n_items, K, L))
        eps_sum = np.zeros((K, L, R))
        picks = readout_sweeps(int(self.epochs), int(self.burn_in), int(self.sample_lag))
        history = []
        # the serial twin unless there are chunks to share among threads
        sweep_kernel = bhfree_sweep.variant(chunks.shape[0] > 2)
        with progress_bar(self, int(self.epochs)) as step:
            for sweep in range(1, int(self.epochs) + 1):
                ll = sweep_kernel(chunks, indptr, indices, lev, zu, zi, nuk, nkl, nk, nklr, nikl, a, b, g, s,
                                  sweep_seeds(self.seed, sweep, chunks.shape[0] - 1))
                ll = float(ll) / max(1, indices.shape[0])
                self._check_sweep(sweep, ll)
                history.append(ll)
                step(ll)
                if sweep in picks:
                    pu_sum += (nuk + a) / (n_u[:, None] + K * a)
                    psi_sum += (nkl + b) / (nk[:, None] + L * b)
                    phi_sum += (nikl + s) / (nkl[None, :, :] + n_items * s)
                    eps_sum += (nklr + g) / (nkl[:, :, None] + R * g)
        n = len(picks)
        pu, psi, phi, eps = pu_sum / n, psi_sum / n, phi_sum / n, eps_sum / n
        self._check_sweep(int(self.epochs), 0.0, pu, psi, phi, eps)
        self.user_topics_ = pu.astype(np.float32)
        self.category_weights_ = psi.astype(np.float32)
        self.category_items_ = np.ascontiguousarray(phi.transpose(1, 2, 0), dtype=np.float32)
        self.category_levels_ = eps.astype(np.float32)
        # p(i, r | k) = sum_l psi_kl phi_kli eps_klr
        self.item_levels_ = np.einsum("kl,ikl,klr->kir", psi, phi, eps).astype(np.float32)
        share = (pu * n_u[:, None]).sum(axis=0)
        joint = np.einsum("k,kl,ikl->ikl", share, psi, phi).reshape(n_items, K * L)
        self.item_topics_ = self._item_topics_from(joint)
        self.prior_ = np.full(K, a, dtype=np.float32)
        self.log_likelihood_ = np.asarray(history, dtype=np.float64)


@register
class BHFreeRating(_BHFreeSampler, MixtureRater):
    __doc__ = ("BH-free for rating prediction: ``E[r | u, i]`` under "
               "``p(r | u, i) ∝ sum_kl pi_uk psi_kl phi_kli eps_klr``." + _DOC)

    name = "BHFreeRating"
    paper = _PAPER


@register
class BHFreeRanking(_BHFreeSampler, MixtureRanker):
    __doc__ = ("BH-free for ranking: items scored by ``sum_r r p(i, r | u)`` (the probability "
               "of picking the item times its expected rating, as in JStarCraft; with a single "
               "training value this is ``p(i | u)``)." + _DOC)

    name = "BHFreeRanking"
    paper = _PAPER

    def _fit(self, train: Interactions) -> None:
        super()._fit(train)
        self.level_weights_ = self.levels_.copy()
