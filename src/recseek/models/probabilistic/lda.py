"""Latent Dirichlet allocation of implicit feedback, fitted by collapsed Gibbs sampling."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data._interactions import Interactions
from .._params import Bool
from ..base import Array, StateSpec
from ..registry import register
from ._a_base import GIBBS_CHUNK_TOKENS, TOPIC_RULES, EpochBar, TopicRanker


def minka_update(prior: np.ndarray, counts: np.ndarray, totals: np.ndarray, axis: int) -> np.ndarray:
    """One fixed-point step of Minka's maximum-likelihood update of a Dirichlet prior.

    ``counts`` holds the per-group counts (groups along the other axis than ``axis``),
    ``totals`` each group's total, ``prior`` one value per entry along ``axis``:
    ``a_k <- a_k sum_g [psi(n_gk + a_k) - psi(a_k)] / sum_g [psi(n_g + A) - psi(A)]``.
    Entries without any count keep their value.
    """
    from scipy.special import digamma

    a_sum = prior.sum()
    used = totals > 0
    den = float(np.sum(digamma(totals[used] + a_sum) - digamma(a_sum)))
    # only the non-zero counts contribute: digamma is evaluated there alone
    rows, cols = np.nonzero(counts)
    entry = cols if axis == 1 else rows
    terms = digamma(counts[rows, cols] + prior[entry]) - digamma(prior)[entry]
    num = np.bincount(entry, weights=terms, minlength=len(prior))
    out = prior.copy()
    ok = (num > 0) & (den > 0)
    out[ok] = prior[ok] * num[ok] / den
    return out


@register
class LDA(TopicRanker):
    """Latent Dirichlet allocation over each user's items (a user is a document, an item
    a word), fitted by collapsed Gibbs sampling.

    Model: ``theta_u ~ Dir(alpha)``, ``phi_z ~ Dir(beta)`` over items, and for each
    training pair a topic ``z ~ theta_u`` and the item ``i ~ phi_z``. Each sweep resamples
    every pair's topic from ``p(z = t | rest) ~ (n_ut + alpha_t) (n_ti + beta_i) /
    (n_t + sum beta)``; with ``learn_priors`` alpha and beta then take one step of
    Minka's fixed-point update (as JStarCraft does after every sweep). After
    ``burn_in`` sweeps, every ``sample_lag``-th sweep adds the estimates
    ``theta_ut = (n_ut + alpha_t) / (n_u + sum alpha)`` and
    ``phi_ti = (n_ti + beta_i) / (n_t + sum beta)`` to a running mean (the last sweep's
    estimates when no sweep qualifies). Items are ranked by ``sum_t theta_ut phi_ti``.
    The progress bar shows the mean log predictive probability of the training pairs.

    Gibbs sampling is sequential per user; data with more than 200,000 pairs is swept in
    fixed chunks of users that run in parallel, each sampling against the item-topic
    counts of the previous sweep plus its own changes, merged after the sweep
    (approximate distributed LDA, Newman et al. 2009). Chunks and random streams depend
    only on the data and the seed, so a fixed seed reproduces the model on any number of
    threads; smaller data is one chunk (exact collapsed Gibbs).

    Parameters
    ----------
    factors : int
        Number of topics K (JStarCraft ``recommender.topic.number``).
    epochs : int
        Gibbs sweeps (``recommender.iterator.maximum``).
    alpha : float
        Initial symmetric Dirichlet prior of the user-topic mixtures
        (``recommender.user.dirichlet.prior``).
    beta : float
        Initial symmetric Dirichlet prior of the topic-item distributions
        (``recommender.topic.dirichlet.prior``).
    burn_in : int
        Sweeps before samples are collected (``recommender.pgm.burnin``).
    sample_lag : int
        Collect a sample every this many sweeps (``recommender.pgm.samplelag``).
    learn_priors : bool
        Learn alpha (per topic) and beta (per item) by Minka's update after each sweep.
    fold_in_steps : int
        EM rounds when folding in a new user (``phi`` fixed, ``alpha`` as pseudo-counts).
    seed : int or None
        Seed of the initial topics and of every sweep.
    verbose : bool
        Progress bar with the training log-likelihood per sweep.

    Learned state: ``user_topic_`` (n_users, K) ``theta``, ``item_topic_`` (n_items, K)
    ``phi`` transposed, ``topic_prior_`` (K,) the topics' share of the tokens,
    ``alpha_`` (K,), ``beta_`` (n_items,), ``loglik_`` (epochs,).

    Reference: Blei, Ng, Jordan, "Latent Dirichlet Allocation", JMLR 3, 2003; collapsed
    Gibbs sampling after Griffiths & Steyvers, PNAS 2004.
    """

    name = "LDA"
    paper = "Blei, Ng, Jordan. Latent Dirichlet Allocation. Journal of Machine Learning Research 3:993-1022, 2003"
    rules = {**TOPIC_RULES, "learn_priors": Bool()}
    test_params = {"factors": 4, "epochs": 40, "burn_in": 10, "sample_lag": 5, "alpha": 0.5}
    state: ClassVar[dict[str, StateSpec]] = {
        "alpha_": Array("float32", ("factors",)),
        "beta_": Array("float32", ("n_items",)),
    }

    def __init__(self, factors: int = 10, epochs: int = 100, alpha: float = 0.01, beta: float = 0.01,
                 burn_in: int = 10, sample_lag: int = 10, learn_priors: bool = True, fold_in_steps: int = 50,
                 seed: int | None = 0, verbose: bool = False) -> None:
        self.factors = factors
        self.epochs = epochs
        self.alpha = alpha
        self.beta = beta
        self.burn_in = burn_in
        self.sample_lag = sample_lag
        self.learn_priors = learn_priors
        self.fold_in_steps = fold_in_steps
        self.seed = seed
        self.verbose = verbose

    def _fit(self, train: Interactions) -> None:
        from ._topic_kernels import chunk_bounds, count_tokens, lda_sweep, stream_seeds

        k = int(self.factors)
        m = train.matrix
        indptr = np.asarray(m.indptr, dtype=np.int64)
        indices = np.asarray(m.indices, dtype=np.int64)
        rows = np.repeat(np.arange(train.n_users, dtype=np.int64), np.diff(indptr))
        seed = 0 if self.seed is None else int(self.seed)
        rng = np.random.default_rng(self.seed)
        z = rng.integers(0, k, size=m.nnz).astype(np.int64)
        ut, it, tot = count_tokens(rows, indices, z, train.n_users, train.n_items, k)
        alpha = np.full(k, float(self.alpha))
        beta = np.full(train.n_items, float(self.beta))
        chunks = chunk_bounds(indptr, GIBBS_CHUNK_TOKENS)
        n_u = np.diff(indptr).astype(np.float64)
        theta_sum = np.zeros((train.n_users, k))
        phi_sum = np.zeros((train.n_items, k))
        samples = 0
        self.loglik_ = np.zeros(int(self.epochs), dtype=np.float64)
        bar = EpochBar(self, int(self.epochs), "log-likelihood")
        seed_base = seed if self.seed is not None else int(rng.integers(0, 2**62))
        for epoch in bar:
            ll = lda_sweep(indptr, indices, z, ut, it, tot, alpha, beta, float(beta.sum()), chunks,
                           stream_seeds(seed_base, epoch, len(chunks) - 1))
            self.loglik_[epoch] = ll
            if self.learn_priors:
                alpha = minka_update(alpha, ut.astype(np.float64), n_u, axis=1)
                beta = minka_update(beta, it.T.astype(np.float64), tot.astype(np.float64), axis=1)
            self._check_finite(epoch, np.asarray(ll))
            self._check_probabilities(epoch, alpha, beta)
            if epoch > int(self.burn_in) and epoch % int(self.sample_lag) == 0:
                theta, phi = self._estimates(ut, it, tot, alpha, beta, n_u)
                theta_sum += theta
                phi_sum += phi
                samples += 1
            bar.report(ll / max(m.nnz, 1))
        if samples == 0:
            theta_sum, phi_sum = self._estimates(ut, it, tot, alpha, beta, n_u)
            samples = 1
        self.user_topic_ = (theta_sum / samples).astype(np.float32)
        self.item_topic_ = (phi_sum / samples).astype(np.float32)
        self.topic_prior_ = (tot / max(tot.sum(), 1)).astype(np.float32)
        self.alpha_ = alpha.astype(np.float32)
        self.beta_ = beta.astype(np.float32)

    @staticmethod
    def _estimates(ut, it, tot, alpha, beta, n_u):
        theta = (ut + alpha[None, :]) / (n_u[:, None] + alpha.sum())
        phi = (it + beta[:, None]) / (tot[None, :] + beta.sum())
        return theta, phi

    def _fold_in_prior(self) -> np.ndarray:
        return self.alpha_.astype(np.float64)
