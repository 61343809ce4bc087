"""User Rating Profile model (URP) for rating prediction, by collapsed Gibbs sampling."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data import Interactions
from ..registry import register
from ._b_common import (
    GIBBS_RULES,
    MixtureRater,
    minka_update,
    mixture_state,
    positive,
    progress_bar,
    readout_sweeps,
    sweep_seeds,
)


@register
class URP(MixtureRater):
    """User Rating Profile model: a user is a mixture of attitudes, each with its own
    rating distribution for every item.

    Generative model (K attitudes): each user draws attitude weights
    ``theta_u ~ Dir(alpha)``; attitude ``k`` has, for each item ``i``, a rating
    distribution ``beta_ki ~ Dir(beta)`` over the rating levels. For each item the user
    rates, ``z ~ theta_u`` and ``r ~ beta_zi``. Prediction:
    ``E[r | u, i] = sum_r r sum_k theta_uk beta_kir``.

    Inference: collapsed Gibbs sampling of the attitude of every rating,
    ``p(z = k | rest) ∝ (n_uk + alpha_k) (n_kir + beta_r) / (n_ki + sum beta)`` (Marlin
    fits the model variationally; JStarCraft, whose settings these are, samples it),
    with Minka's fixed-point update of ``alpha`` and ``beta`` after each sweep when
    ``learn_priors``. After ``burn_in`` sweeps the posterior means of ``theta`` and
    ``beta`` are averaged over every ``sample_lag``-th sweep. Sweeps run over chunks of
    users with private copies of the item tables merged per sweep (one chunk, exact
    sampling, below 200,000 ratings); a seed reproduces a fit on any number of threads.

    Parameters
    ----------
    factors : int
        K, the number of attitudes (JStarCraft ``recommender.topic.number``).
    epochs : int
        Gibbs sweeps (``recommender.iterator.maximum``).
    burn_in, sample_lag : int
        Sweeps before sampling, and between samples (``recommender.pgm.burnin``,
        ``recommender.pgm.samplelag``).
    alpha : float or None
        Symmetric Dirichlet prior of the attitude weights (None: ``1 / factors``, what
        JStarCraft runs with, since its settings name no value).
    beta : float or None
        Symmetric Dirichlet prior of the rating distributions (None: ``1 / factors``,
        JStarCraft's default).
    learn_priors : bool
        Re-estimate ``alpha`` and ``beta`` after each sweep (Minka 2000, eq. 55).
    seed : int or None
        Seed of the initial assignments and of the sampler.
    verbose : bool
        Progress bar with the collapsed log-likelihood per rating.

    Learned state
    -------------
    user_topics_ : (n_users, factors)
        ``theta``, posterior mean.
    item_levels_ : (factors, n_items, n_levels)
        ``beta_kir = p(r | k, i)``, posterior mean.
    item_topics_ : (n_items, factors)
        Share of the item's ratings attributed to each attitude (``similar_items``).
    levels_ : (n_levels,)
        The distinct training ratings.
    prior_ : (factors,)
        The final ``alpha`` (used to fold in new users by EM on their attitude weights).

    Reference: Marlin. Modeling User Rating Profiles For Collaborative Filtering. NIPS 2003.
    """

    name = "URP"
    paper = "Marlin. Modeling User Rating Profiles For Collaborative Filtering. NIPS 2003"
    rules: ClassVar[dict] = {**GIBBS_RULES, "alpha": positive(none_ok=True), "beta": positive(none_ok=True)}
    # more communities than planted blocks: a sampler with exactly as many can merge two blocks
    test_params: ClassVar[dict] = {"factors": 8, "epochs": 100, "burn_in": 50, "sample_lag": 5}
    divergence_hint: ClassVar[str] = "raise alpha or beta"
    state: ClassVar[dict] = mixture_state("factors", "factors")

    def __init__(self, factors: int = 10, epochs: int = 100, burn_in: int = 10, sample_lag: int = 10,
                 alpha: float | None = None, beta: float | None = None, learn_priors: bool = True,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.burn_in = burn_in
        self.sample_lag = sample_lag
        self.alpha = alpha
        self.beta = beta
        self.learn_priors = learn_priors
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._b_gibbs import urp_sweep

        self._check_schedule()
        indptr, indices, lev, chunks = self._training_arrays(train, int(self.factors) * 2)
        K, n_users, n_items, R = int(self.factors), train.n_users, train.n_items, self.levels_.shape[0]
        rng = np.random.default_rng(self.seed)
        z = rng.integers(0, K, indices.shape[0]).astype(np.int32)
        users = np.repeat(np.arange(n_users), np.diff(indptr))
        nuk = np.zeros((n_users, K), np.int32)
        np.add.at(nuk, (users, z), 1)
        nikr = np.zeros((n_items, K, R), np.int32)  # item-major
        np.add.at(nikr, (indices, z, lev), 1)
        nik = nikr.sum(axis=2).astype(np.int32)
        n_u = np.diff(indptr).astype(np.float64)
        alpha = np.full(K, 1.0 / K if self.alpha is None else self.alpha, np.float64)
        beta = np.full(R, 1.0 / K if self.beta is None else self.beta, np.float64)
        theta_sum = np.zeros((n_users, K))
        level_sum = np.zeros((n_items, K, R))
        usage_sum = np.zeros((n_items, K))
        picks = readout_sweeps(int(self.epochs), int(self.burn_in), int(self.sample_lag))
        history = []
        # the serial twin unless there are chunks to share among threads
        sweep_kernel = urp_sweep.variant(chunks.shape[0] > 2)
        with progress_bar(self, int(self.epochs)) as step:
            for sweep in range(1, int(self.epochs) + 1):
                ll = sweep_kernel(chunks, indptr, indices, lev, z, nuk, nik, nikr, alpha, beta,
                               sweep_seeds(self.seed, sweep, chunks.shape[0] - 1))
                ll = float(ll) / max(1, indices.shape[0])
                self._check_sweep(sweep, ll)
                history.append(ll)
                step(ll)
                if self.learn_priors:
                    alpha = minka_update(alpha, nuk, n_u)
                    beta = minka_update(beta, nikr.reshape(-1, R), nik.reshape(-1))
                if sweep in picks:
                    theta_sum += (nuk + alpha) / (n_u[:, None] + alpha.sum())
                    level_sum += (nikr + beta) / (nik[:, :, None] + beta.sum())
                    usage_sum += nik
        n = len(picks)
        theta, levels = theta_sum / n, level_sum / n
        self._check_sweep(int(self.epochs), 0.0, theta, levels)
        self.user_topics_ = theta.astype(np.float32)
        self.item_levels_ = np.ascontiguousarray(levels.transpose(1, 0, 2), dtype=np.float32)
        self.item_topics_ = self._item_topics_from(usage_sum)
        self.prior_ = alpha.astype(np.float32)
        self.log_likelihood_ = np.asarray(history, dtype=np.float64)
