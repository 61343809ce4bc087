"""Bayesian User Community Model (BUCM), for rating prediction and for ranking, by
collapsed Gibbs sampling."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from ..registry import register
from ._b_common import (
    GIBBS_RULES,
    MixtureRanker,
    MixtureRater,
    minka_update,
    mixture_state,
    positive,
    progress_bar,
    readout_sweeps,
    sweep_seeds,
)

_PAPER = ("Barbieri, Costa, Manco & Ortale. Modeling Item Selection and Relevance for Accurate "
          "Recommendations: a Bayesian Approach. RecSys 2011")

_DOC = """

    Generative model (K user communities): each user ``u`` draws community weights
    ``theta_u ~ Dir(alpha)``; each community ``k`` has an item distribution
    ``phi_k ~ Dir(beta)`` and, for each item, a rating distribution
    ``eps_ki ~ Dir(gamma)``. Each observed pair draws ``z ~ theta_u``, the item
    ``i ~ phi_z`` and the rating ``r ~ eps_zi``. So ``p(i, r | u) = sum_k theta_uk
    phi_ki eps_kir`` models both which items a user picks and how the user rates them.

    Inference: collapsed Gibbs sampling of the community of every rating, with
    ``p(z = k | rest) ∝ (n_uk + alpha_k) (n_ki + beta_i) / (n_k + sum beta)
    (n_kir + gamma_r) / (n_ki + sum gamma)``; with ``learn_priors`` one step of Minka's
    fixed point re-estimates ``alpha``, ``beta`` and ``gamma`` after each sweep (as
    JStarCraft does). After ``burn_in`` sweeps the posterior means of ``theta``, ``phi``
    and ``eps`` are averaged over every ``sample_lag``-th sweep. The sweep runs over
    chunks of users with their own copies of the community tables, merged per sweep
    (one chunk, i.e. exact sampling, below 200,000 ratings); a seed reproduces a fit
    on any number of threads.

    Parameters
    ----------
    factors : int
        K, the number of user communities (JStarCraft ``recommender.topic.number``).
    epochs : int
        Gibbs sweeps (``recommender.iterator.maximum``).
    burn_in : int
        Sweeps before samples are collected (``recommender.pgm.burnin``).
    sample_lag : int
        Sweeps between collected samples (``recommender.pgm.samplelag``).
    alpha, beta, gamma : float
        Symmetric Dirichlet priors of the user communities, the community item
        distributions and the rating distributions (``recommender.bucm.alpha``,
        ``.beta``, ``.gamma``). JStarCraft reads ``beta`` under a misspelt key
        (``re.bucm.beta``), so it always runs with ``beta = 1 / n_items``; ``beta=None``
        does the same here.
    learn_priors : bool
        Re-estimate the priors after each sweep (Minka 2000, eq. 55).
    seed : int or None
        Seed of the initial assignments and of the sampler.
    verbose : bool
        Progress bar with the collapsed log-likelihood per rating.

    Learned state
    -------------
    user_topics_ : (n_users, factors)
        ``theta``, posterior mean.
    item_levels_ : (factors, n_items, n_levels)
        ``phi_ki eps_kir``, posterior mean of ``p(i, r | k)``.
    item_topics_ : (n_items, factors)
        ``p(k | i)``, the item's community distribution (used by ``similar_items``).
    levels_ : (n_levels,)
        The distinct training ratings.
    prior_ : (factors,)
        The final ``alpha`` (used to fold in new users).

    New users are folded in by EM on their community weights with the communities fixed.
    """


class _BUCMSampler:
    """The BUCM Gibbs sampler shared by the rating and ranking variants."""

    rules: ClassVar[dict] = {**GIBBS_RULES, "alpha": positive(), "beta": positive(none_ok=True),
                             "gamma": positive()}
    # more communities than planted blocks: a sampler with exactly as many can merge two blocks
    test_params: ClassVar[dict] = {"factors": 8, "epochs": 100, "burn_in": 50, "sample_lag": 5}
    divergence_hint: ClassVar[str] = "raise alpha, beta or gamma"
    state: ClassVar[dict] = mixture_state("factors", "factors")

    def __init__(self, factors: int = 10, epochs: int = 100, burn_in: int = 10, sample_lag: int = 10,
                 alpha: float = 0.01, beta: float | None = None, gamma: float = 0.01, learn_priors: bool = True,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.burn_in = burn_in
        self.sample_lag = sample_lag
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.learn_priors = learn_priors
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._b_gibbs import bucm_sweep

        self._check_schedule()
        indptr, indices, lev, chunks = self._training_arrays(train, int(self.factors) * 2)
        K, n_users, n_items, R = int(self.factors), train.n_users, train.n_items, self.levels_.shape[0]
        rng = np.random.default_rng(self.seed)
        z = rng.integers(0, K, indices.shape[0]).astype(np.int32)
        users = np.repeat(np.arange(n_users), np.diff(indptr))
        nuk = np.zeros((n_users, K), np.int32)
        np.add.at(nuk, (users, z), 1)
        # item-major tables: nik (n_items, K), nikr (n_items, K, R)
        nikr = np.zeros((n_items, K, R), np.int32)
        np.add.at(nikr, (indices, z, lev), 1)
        nik = nikr.sum(axis=2).astype(np.int32)
        nk = nik.sum(axis=0).astype(np.int32)
        n_u = np.diff(indptr).astype(np.float64)
        alpha = np.full(K, self.alpha, np.float64)
        beta = np.full(n_items, 1.0 / n_items if self.beta is None else self.beta, np.float64)
        gamma = np.full(R, self.gamma, np.float64)
        theta_sum = np.zeros((n_users, K))
        phi_sum = np.zeros((K, n_items))
        eps_sum = np.zeros((K, n_items, R))
        picks = readout_sweeps(int(self.epochs), int(self.burn_in), int(self.sample_lag))
        history = []
        # the serial twin unless there are chunks to share among threads
        sweep_kernel = bucm_sweep.variant(chunks.shape[0] > 2)
        with progress_bar(self, int(self.epochs)) as step:
            for sweep in range(1, int(self.epochs) + 1):
                ll = sweep_kernel(chunks, indptr, indices, lev, z, nuk, nik, nk, nikr, alpha, beta, gamma,
                                sweep_seeds(self.seed, sweep, chunks.shape[0] - 1))
                ll = float(ll) / max(1, indices.shape[0])
                self._check_sweep(sweep, ll)
                history.append(ll)
                step(ll)
                if self.learn_priors:
                    alpha = minka_update(alpha, nuk, n_u)
                    beta = minka_update(beta, nik.T, nk)
                    gamma = minka_update(gamma, nikr.reshape(-1, R), nik.reshape(-1))
                if sweep in picks:
                    theta_sum += (nuk + alpha) / (n_u[:, None] + alpha.sum())
                    phi_sum += ((nik + beta[:, None]) / (nk[None, :] + beta.sum())).T
                    eps_sum += ((nikr + gamma) / (nik[:, :, None] + gamma.sum())).transpose(1, 0, 2)
        n = len(picks)
        theta, phi, eps = theta_sum / n, phi_sum / n, eps_sum / n
        self._check_sweep(int(self.epochs), 0.0, theta, phi, eps)
        self.user_topics_ = theta.astype(np.float32)
        self.item_levels_ = (phi[:, :, None] * eps).astype(np.float32)
        share = (theta * n_u[:, None]).sum(axis=0)
        self.item_topics_ = self._item_topics_from((phi * share[:, None]).T)
        self.prior_ = alpha.astype(np.float32)
        self.log_likelihood_ = np.asarray(history, dtype=np.float64)


@register
class BUCMRating(_BUCMSampler, MixtureRater):
    __doc__ = ("Bayesian User Community Model for rating prediction: ``E[r | u, i]`` under "
               "``p(r | u, i) ∝ sum_k theta_uk phi_ki eps_kir``." + _DOC)

    name = "BUCMRating"
    paper = _PAPER


@register
class BUCMRanking(_BUCMSampler, MixtureRanker):
    __doc__ = ("Bayesian User Community Model for ranking: items scored by the probability "
               "that the user picks the item and rates it above the training mean, "
               "``sum_k theta_uk phi_ki sum_{r > mean} eps_kir`` (every level counts when all "
               "training values are equal, e.g. implicit feedback)." + _DOC)

    name = "BUCMRanking"
    paper = _PAPER

    def _fit(self, train: Interactions) -> None:
        super()._fit(train)
        mean = float(np.mean(train.matrix.data))
        weights = (self.levels_ > mean).astype(np.float32)
        self.level_weights_ = weights if weights.any() else np.ones_like(self.levels_)
